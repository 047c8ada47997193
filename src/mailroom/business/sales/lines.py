"""Lines and totals of any priced document (quotations here, invoices in `invoicing`).

Both document services call these inside their own transaction after their own state checks;
nothing else writes line rows or stored amounts.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from mailroom.business.sales.models import PricedDocument, Tax
from mailroom.lib import money

LINE_KEYS = {"id", "sequence", "description", "quantity", "price_unit", "discount", "tax_ids"}
LINE_FIELDS = ("sequence", "description", "quantity", "price_unit", "discount")


def _number(value):
    # JSON clients send floats; go through str so 0.1 stays 0.1 (see lib.money.to_decimal).
    return Decimal(repr(value)) if isinstance(value, float) else value


def _as_id(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("not an id")
    return int(value)


def write_lines(document: PricedDocument, line_model: type[models.Model], parent_field: str,
                lines: list[dict]) -> None:
    """Make the document's lines exactly `lines`.

    A dict with an `id` of an existing line updates it (its taxes stay unless `tax_ids` is
    given); a dict without one adds a line; existing lines not listed are deleted. The list
    order becomes the line order unless `sequence` is given. Every error of every line is
    reported at once as {"lines": ["Line 2: quantity: …", …]} and nothing is written.
    """
    if not isinstance(lines, list | tuple):
        raise ValidationError({"lines": "Lines must be a list."})
    existing = {line.pk: line for line in line_model.objects.filter(**{parent_field: document})}
    taxes = {tax.pk: tax for tax in Tax.objects.filter(company_id=document.company_id)}
    errors: list[str] = []
    prepared: list[tuple[models.Model, list[Tax] | None]] = []
    for index, data in enumerate(lines, start=1):
        if not isinstance(data, dict):
            errors.append(f"Line {index}: expected an object.")
            continue
        unknown = set(data) - LINE_KEYS
        if unknown:
            errors.append(f"Line {index}: unknown field(s) {', '.join(sorted(unknown))}.")
            continue
        try:
            line_id = _as_id(data.get("id"))
            tax_ids = [_as_id(i) for i in (data.get("tax_ids") or [])]
        except (TypeError, ValueError):
            errors.append(f"Line {index}: ids must be integers.")
            continue
        if line_id is not None:
            line = existing.get(line_id)
            if line is None:
                errors.append(f"Line {index}: line {line_id} is not on this document.")
                continue
        else:
            line = line_model(**{parent_field: document})
        for name in LINE_FIELDS:
            if name in data:
                setattr(line, name, _number(data[name]))
        if "sequence" not in data:
            line.sequence = index * 10
        line_taxes = None
        if "tax_ids" in data or line.pk is None:
            missing = [str(i) for i in tax_ids if i not in taxes]
            if missing:
                errors.append(f"Line {index}: unknown tax {', '.join(missing)}.")
                continue
            line_taxes = [taxes[i] for i in dict.fromkeys(tax_ids)]
        try:
            line.full_clean(exclude=[parent_field])
        except ValidationError as exc:
            details = "; ".join(f"{field}: {' '.join(msgs)}"
                                for field, msgs in exc.message_dict.items())
            errors.append(f"Line {index}: {details}")
            continue
        prepared.append((line, line_taxes))
    if errors:
        raise ValidationError({"lines": errors})
    kept = {line.pk for line, _ in prepared if line.pk is not None}
    line_model.objects.filter(pk__in=set(existing) - kept).delete()
    for line, line_taxes in prepared:
        line.save()
        if line_taxes is not None:
            line.taxes.set(line_taxes)


def compute_totals(document: PricedDocument, line_model: type[models.Model],
                   parent_field: str) -> bool:
    """Refresh each line's stored subtotal and the document's amounts (not saved).

    Returns whether the document's amounts changed.
    """
    amounts = []
    stale = []
    for line in line_model.objects.filter(**{parent_field: document}).prefetch_related("taxes"):
        line_amounts = line.amounts()
        amounts.append(line_amounts)
        if line.subtotal != line_amounts.untaxed:
            line.subtotal = line_amounts.untaxed
            stale.append(line)
    if stale:
        line_model.objects.bulk_update(stale, ["subtotal"])
    totals = money.document_totals(amounts)
    before = (document.amount_untaxed, document.amount_tax, document.amount_total)
    document.amount_untaxed = totals.untaxed
    document.amount_tax = totals.tax
    document.amount_total = totals.total
    return before != (totals.untaxed, totals.tax, totals.total)


def copy_lines(source: PricedDocument, source_model: type[models.Model],
               source_field: str) -> list[dict]:
    """The lines of a document as `write_lines` input (quotation → invoice)."""
    return [
        {"sequence": line.sequence, "description": line.description,
         "quantity": line.quantity, "price_unit": line.price_unit, "discount": line.discount,
         "tax_ids": [tax.pk for tax in line.taxes.all()]}
        for line in source_model.objects.filter(**{source_field: source})
        .prefetch_related("taxes")
    ]
