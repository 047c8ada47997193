"""URLs of document PDFs, for admin buttons, the composer and templates.

Kept apart from `pdf` so that linking to a PDF never imports WeasyPrint (about a second of
start-up, paid only by the process that actually renders).
"""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse


def document_url(record_or_model, pk: int | str | None = None, *, download: bool = False) -> str:
    """`/documents/sales.quotation/12.pdf` for a record, or for a model class and a pk."""
    pk = record_or_model.pk if pk is None else pk
    if not str(pk).isdigit():
        raise Http404("No such record.")
    url = reverse("documents:pdf", args=[record_or_model._meta.label_lower, int(pk)])
    return f"{url}?download=1" if download else url
