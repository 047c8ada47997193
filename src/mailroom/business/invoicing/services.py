"""Invoicing services: the only writers of invoices, their lines and their payments.

State moves only through `post_invoice`, `cancel_invoice` and `reset_invoice_to_draft`;
`save_invoice` refuses state changes and, once posted, changes to the customer, date or
currency, so a posted invoice stays what was sent. Payments only move forward through
`register_payment`, which keeps amount_paid + amount_residual == amount_total.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from mailroom.business.invoicing.models import Invoice, InvoiceLine
from mailroom.business.sales.lines import compute_totals, copy_lines, write_lines
from mailroom.business.sales.models import Quotation, QuotationLine
from mailroom.chatter.models import Message
from mailroom.chatter.services import (
    log_note,
    post_message,
    require_access,
    save_record,
    tracking_lines,
)
from mailroom.lib import money

State = Invoice.State
LOCKED_FIELDS = ("partner_id", "invoice_date", "currency", "quotation_id")


def _locked(invoice: Invoice) -> Invoice:
    """The stored row, locked for the transaction: payments and posting never interleave."""
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


def _settle(invoice: Invoice) -> None:
    invoice.amount_residual = invoice.amount_total - invoice.amount_paid
    invoice.payment_state = money.payment_state(invoice.amount_total, invoice.amount_paid)


def save_invoice(invoice: Invoice, *, actor, created_message: str = "") -> Invoice:
    """Create or update an invoice's header (customer, dates, salesperson, terms)."""
    require_access(actor, invoice)
    with transaction.atomic():
        if invoice.pk is None:
            if invoice.state != State.DRAFT or invoice.amount_paid:
                raise ValidationError({"state": "A new invoice starts as an unpaid draft."})
        else:
            stored = _locked(invoice)
            if stored.state != invoice.state:
                raise ValidationError({"state": "Use Post, Cancel or Reset to draft to change "
                                                "the state."})
            if not stored.is_editable and any(
                getattr(stored, name) != getattr(invoice, name) for name in LOCKED_FIELDS
            ):
                raise ValidationError("A posted or cancelled invoice keeps its customer, date "
                                      "and currency; reset it to draft first.")
        if invoice.state == State.DRAFT:
            invoice.amount_residual = invoice.amount_total - invoice.amount_paid
        return save_record(invoice, actor=actor, created_message=created_message)


def set_lines(invoice: Invoice, lines: list[dict], *, actor) -> Invoice:
    """Replace a draft invoice's lines (see `sales.lines.write_lines`) and store totals."""
    require_access(actor, invoice)
    with transaction.atomic():
        if invoice.pk is None:
            save_invoice(invoice, actor=actor)
        if not _locked(invoice).is_editable:
            raise ValidationError({"lines": "Only a draft invoice can change its lines."})
        write_lines(invoice, InvoiceLine, "invoice", lines)
        compute_totals(invoice, InvoiceLine, "invoice")
        return save_invoice(invoice, actor=actor)


def post_invoice(invoice: Invoice, *, actor) -> Invoice:
    """Draft → posted: totals are fixed and the amount becomes due."""
    require_access(actor, invoice)
    with transaction.atomic():
        stored = _locked(invoice)
        if stored.state != State.DRAFT:
            raise ValidationError({"state": f"A {stored.get_state_display().lower()} invoice "
                                            "cannot be posted."})
        if not InvoiceLine.objects.filter(invoice=stored).exists():
            raise ValidationError({"lines": "Add at least one line before posting."})
        compute_totals(stored, InvoiceLine, "invoice")
        if stored.amount_total < 0:
            raise ValidationError({"lines": "An invoice total cannot be negative."})
        _settle(stored)
        stored.state = State.POSTED
        save_record(stored, actor=actor)
    invoice.refresh_from_db()
    return invoice


def register_payment(invoice: Invoice, amount, *, actor, memo: str = "") -> Invoice:
    """Record a customer payment on a posted invoice; partial payments add up.

    Refuses overpayments and fractions of a cent rather than guessing what was meant.
    """
    require_access(actor, invoice)
    try:
        amount = money.to_decimal(amount)
    except ValueError as exc:
        raise ValidationError({"amount": str(exc)}) from exc
    if amount <= 0:
        raise ValidationError({"amount": "A payment must be more than zero."})
    if amount != money.round_money(amount):
        raise ValidationError({"amount": "A payment cannot hold fractions of a cent."})
    amount = money.round_money(amount)
    with transaction.atomic():
        stored = _locked(invoice)
        if stored.state != State.POSTED:
            raise ValidationError({"state": "Only a posted invoice can be paid."})
        if amount > stored.amount_residual:
            raise ValidationError({"amount": f"The payment is more than the amount due "
                                             f"({stored.amount_residual:,.2f} "
                                             f"{stored.currency})."})
        before = stored.tracking_snapshot()
        stored.amount_paid += amount
        _settle(stored)
        stored.save(update_fields=["amount_paid", "amount_residual", "payment_state"])
        text = f"Payment of {amount:,.2f} {stored.currency} registered."
        post_message(stored, actor=actor, message_type=Message.Type.SYSTEM, notify=False,
                     body_text=f"{text} {memo}".strip(),
                     tracking=tracking_lines(stored, before))
    invoice.refresh_from_db()
    return invoice


def mark_invoice_sent(invoice: Invoice, *, actor, when=None) -> Invoice:
    """The invoice reached the customer by mail: record when, with a chatter line."""
    require_access(actor, invoice)
    when = when or timezone.now()
    with transaction.atomic():
        stored = _locked(invoice)
        first = stored.sent_at is None
        Invoice.objects.filter(pk=stored.pk).update(sent_at=when)
        if first:
            log_note(stored, actor=None, body_text="Invoice sent to the customer by email.")
    invoice.refresh_from_db()
    return invoice


def cancel_invoice(invoice: Invoice, *, actor) -> Invoice:
    """Draft or posted (and unpaid) → cancelled; the number stays used."""
    require_access(actor, invoice)
    with transaction.atomic():
        stored = _locked(invoice)
        if stored.state == State.CANCEL:
            raise ValidationError({"state": "The invoice is already cancelled."})
        if stored.amount_paid > 0:
            raise ValidationError({"state": "An invoice with payments cannot be cancelled."})
        stored.state = State.CANCEL
        stored.amount_residual = Decimal("0.00")  # nothing is owed on a cancelled invoice
        save_record(stored, actor=actor)
    invoice.refresh_from_db()
    return invoice


def reset_invoice_to_draft(invoice: Invoice, *, actor) -> Invoice:
    """Posted (unpaid) or cancelled → draft, to correct it."""
    require_access(actor, invoice)
    with transaction.atomic():
        stored = _locked(invoice)
        if stored.state == State.DRAFT:
            raise ValidationError({"state": "The invoice is already a draft."})
        if stored.amount_paid > 0:
            raise ValidationError({"state": "An invoice with payments cannot go back to draft."})
        stored.state = State.DRAFT
        stored.payment_state = Invoice.PaymentState.NOT_PAID
        stored.amount_residual = stored.amount_total
        save_record(stored, actor=actor)
    invoice.refresh_from_db()
    return invoice


def pay_in_full(invoice: Invoice, *, actor) -> Invoice:
    """Register the whole amount due (the admin's bulk action)."""
    if invoice.state == State.POSTED and invoice.amount_residual <= Decimal("0"):
        return invoice
    return register_payment(invoice, invoice.amount_residual, actor=actor)


def create_invoice_from_quotation(quotation: Quotation, *, actor,
                                  invoice_date=None) -> Invoice:
    """A draft invoice copying a confirmed sales order's customer, lines and taxes.

    One live invoice per order: a second is refused until the first is cancelled.
    """
    require_access(actor, quotation)
    with transaction.atomic():
        order = Quotation.objects.select_for_update().get(pk=quotation.pk)
        if order.state != Quotation.State.SALE:
            raise ValidationError({"quotation": "Only a confirmed sales order can be invoiced."})
        existing = list(Invoice.objects.filter(quotation=order).exclude(state=State.CANCEL)
                        .values_list("ref", flat=True))
        if existing:
            raise ValidationError({"quotation": f"{order} is already invoiced "
                                                f"({', '.join(existing)})."})
        invoice = Invoice(
            company_id=order.company_id, partner_id=order.partner_id, user_id=order.user_id,
            currency=order.currency, quotation=order, note=order.note,
            invoice_date=invoice_date or timezone.localdate(),
            # The order's totals up front, so the invoice's first chatter line is its creation.
            amount_untaxed=order.amount_untaxed, amount_tax=order.amount_tax,
            amount_total=order.amount_total,
        )
        save_invoice(invoice, actor=actor, created_message=f"Invoice created from {order}")
        write_lines(invoice, InvoiceLine, "invoice", copy_lines(order, QuotationLine,
                                                                "quotation"))
        if compute_totals(invoice, InvoiceLine, "invoice"):
            save_invoice(invoice, actor=actor)
        post_message(order, actor=actor, message_type=Message.Type.SYSTEM, notify=False,
                     body_text=f"Invoice {invoice.ref} created.")
    return invoice
