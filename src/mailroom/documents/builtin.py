"""The documents Mailroom ships: quotations (and sales orders) and customer invoices.

Imported from `DocumentsConfig.ready()` only, so loading this app never imports the sales or
invoicing models before Django has them ready. Titles follow Odoo: a confirmed quotation
prints as a "Sales order", an invoice that is not posted yet says so on its face.
"""

from __future__ import annotations

import re

from mailroom.documents.registry import register_document

# Characters that break a file name on some system or in a Content-Disposition header.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def safe_filename(stem: str) -> str:
    """"Invoice INV/2026/00001" → "Invoice INV-2026-00001.pdf" (a slash is a directory)."""
    cleaned = _UNSAFE.sub("-", stem).strip(" .-") or "document"
    return f"{cleaned[:150]}.pdf"


def quotation_title(quotation) -> str:
    if quotation.state == "sale":
        return "Sales order"
    if quotation.state == "cancel":
        return "Cancelled quotation"
    return "Quotation"


def quotation_filename(quotation) -> str:
    kind = "Sales order" if quotation.state == "sale" else "Quotation"
    return safe_filename(f"{kind} {quotation.ref or quotation.pk}")


def invoice_title(invoice) -> str:
    if invoice.state == "draft":
        return "Draft invoice"
    if invoice.state == "cancel":
        return "Cancelled invoice"
    return "Invoice"


def invoice_filename(invoice) -> str:
    return safe_filename(f"Invoice {invoice.ref or invoice.pk}")


def register_builtin_documents() -> None:
    register_document("sales.quotation", template="documents/quotation.html",
                      filename=quotation_filename, title=quotation_title)
    register_document("invoicing.invoice", template="documents/invoice.html",
                      filename=invoice_filename, title=invoice_title)
