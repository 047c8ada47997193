"""Sales services: the only writers of taxes, quotations and quotation lines.

A quotation's state moves only through `confirm_quotation`, `mark_quotation_sent`,
`cancel_quotation` and `reset_quotation_to_draft`; `save_quotation` refuses state changes, so
neither a form nor an API call can confirm a quotation without its rules. Totals are stored
and recomputed by `set_lines` (and `recompute_totals`) with `mailroom.lib.money`.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mailroom.business.sales.lines import compute_totals, write_lines
from mailroom.business.sales.models import Quotation, QuotationLine, Tax
from mailroom.chatter.services import require_access, save_record
from mailroom.core.roles import Role
from mailroom.core.services import audit, snapshot

State = Quotation.State
# Once confirmed or cancelled, these no longer change (the lines neither).
LOCKED_FIELDS = ("partner_id", "date", "currency")


def save_tax(tax: Tax, *, actor) -> Tax:
    """Create or update a tax (Administrators only); configuration, so it is audited."""
    if actor is not None:
        if not actor.has_role(Role.ADMINISTRATOR):
            raise PermissionDenied("Only administrators can change taxes.")
        if not actor.is_superuser and tax.company_id not in actor.company_ids():
            raise PermissionDenied("You cannot write records of that company.")
    tax.full_clean()
    with transaction.atomic():
        before = snapshot(Tax.objects.get(pk=tax.pk)) if tax.pk else {}
        tax.save()
        audit("tax.update" if before else "tax.create", actor=actor, obj=tax, before=before,
              after=snapshot(tax))
    return tax


def _locked(quotation: Quotation) -> Quotation:
    """The stored row, locked until the end of the transaction (PostgreSQL; SQLite has one
    writer anyway), so two confirmations or a confirmation and an edit cannot interleave."""
    return Quotation.objects.select_for_update().get(pk=quotation.pk)


def save_quotation(quotation: Quotation, *, actor) -> Quotation:
    """Create or update a quotation's header fields (customer, dates, salesperson, terms)."""
    require_access(actor, quotation)
    with transaction.atomic():
        if quotation.pk is None:
            if quotation.state != State.DRAFT:
                raise ValidationError({"state": "A new quotation starts as a draft."})
        else:
            stored = _locked(quotation)
            if stored.state != quotation.state:
                raise ValidationError(
                    {"state": "Use Confirm, Mark as sent, Cancel or Reset to draft to change "
                              "the state."})
            if not stored.is_editable and any(
                getattr(stored, name) != getattr(quotation, name) for name in LOCKED_FIELDS
            ):
                raise ValidationError("A confirmed or cancelled quotation keeps its customer, "
                                      "date and currency.")
        return save_record(quotation, actor=actor)


def set_lines(quotation: Quotation, lines: list[dict], *, actor) -> Quotation:
    """Replace the quotation's lines (see `sales.lines.write_lines`) and store new totals.

    Each dict holds description, quantity, price_unit, discount, tax_ids and optionally the
    id of an existing line to update and a sequence. Only draft or sent quotations change.
    """
    require_access(actor, quotation)
    with transaction.atomic():
        if quotation.pk is None:  # create and fill in one call (the API does this)
            save_quotation(quotation, actor=actor)
        if not _locked(quotation).is_editable:
            raise ValidationError({"lines": "Only a draft or sent quotation can change its "
                                            "lines."})
        write_lines(quotation, QuotationLine, "quotation", lines)
        compute_totals(quotation, QuotationLine, "quotation")
        return save_quotation(quotation, actor=actor)


def recompute_totals(quotation: Quotation, *, actor) -> Quotation:
    """Store fresh totals (after a tax rate changed, say); a no-op when nothing moved."""
    require_access(actor, quotation)
    with transaction.atomic():
        if compute_totals(quotation, QuotationLine, "quotation"):
            save_quotation(quotation, actor=actor)
    return quotation


def _move(quotation: Quotation, *, actor, allowed: tuple[str, ...], to: str,
          refusal: str) -> Quotation:
    """One state transition: lock, check, track ("State: Quotation → Sales order")."""
    require_access(actor, quotation)
    with transaction.atomic():
        stored = _locked(quotation)
        if stored.state not in allowed:
            raise ValidationError({"state": refusal.format(state=stored.get_state_display())})
        if stored.state == to:
            return quotation
        if to == State.SALE:
            if not QuotationLine.objects.filter(quotation=stored).exists():
                raise ValidationError({"lines": "Add at least one line before confirming."})
            compute_totals(stored, QuotationLine, "quotation")
        if to == State.CANCEL and _has_posted_invoices(stored):
            raise ValidationError({"state": "Cancel its posted invoices first."})
        stored.state = to
        save_record(stored, actor=actor)
    quotation.refresh_from_db()
    return quotation


def _has_posted_invoices(quotation: Quotation) -> bool:
    # `invoices` is the reverse FK from invoicing.Invoice; sales does not import invoicing.
    related = getattr(quotation, "invoices", None)
    return related is not None and related.filter(state="posted").exists()


def confirm_quotation(quotation: Quotation, *, actor) -> Quotation:
    """Quotation (draft or sent) → sales order. Refused for cancelled quotations."""
    return _move(quotation, actor=actor, allowed=(State.DRAFT, State.SENT), to=State.SALE,
                 refusal="A quotation in state “{state}” cannot be confirmed.")


def mark_quotation_sent(quotation: Quotation, *, actor) -> Quotation:
    """Draft → sent, when the quotation went out by mail (sending it again is fine)."""
    return _move(quotation, actor=actor, allowed=(State.DRAFT, State.SENT), to=State.SENT,
                 refusal="A quotation in state “{state}” cannot be marked as sent.")


def cancel_quotation(quotation: Quotation, *, actor) -> Quotation:
    return _move(quotation, actor=actor, allowed=(State.DRAFT, State.SENT, State.SALE),
                 to=State.CANCEL, refusal="A quotation in state “{state}” cannot be cancelled.")


def reset_quotation_to_draft(quotation: Quotation, *, actor) -> Quotation:
    return _move(quotation, actor=actor, allowed=(State.CANCEL,), to=State.DRAFT,
                 refusal="Only a cancelled quotation can be reset to draft.")
