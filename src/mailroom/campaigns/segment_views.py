"""/campaigns/segments/…: the segment editor, its condition rows and its live count.

No JSON anywhere: each condition is a row of selects and inputs named `c<i>_field`,
`c<i>_op`, `c<i>_value` (and, for business records, `c<i>_where`, `c<i>_equals`, `c<i>_date`,
`c<i>_days`); `row` lists the row numbers in order. Changing a row's field (or its record
filter) fetches the row again (htmx) with inputs that fit; any change fetches the count again.
Another company's segment is a 404; lists, tags and records of another company are never
offered and refused by `segments.clean_condition` if posted anyway. Saving goes through
`segments.save_segment`; its refusals are red lines on the condition they name.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_http_methods
from django_countries import countries

from mailroom.campaigns import segments
from mailroom.campaigns.campaign_models import Segment
from mailroom.campaigns.models import MailingList
from mailroom.contacts.models import PartnerTag
from mailroom.core.access import allowed
from mailroom.core.decorators import office_user_required
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.lib.params import parse_id

VIEW_PERM = "campaigns.view_segment"
SHOWN = 10  # names under the live count
MAX_ROW = 10_000


def _segment(request, segment_id: int) -> Segment:
    if not allowed(request.user, VIEW_PERM):
        raise Http404("No such segment.")
    found = Segment.objects.for_user(request.user).filter(pk=segment_id).first()
    if found is None:
        raise Http404("No such segment.")
    return found


def _company_id(request) -> int:
    if not allowed(request.user, VIEW_PERM):
        raise Http404("No such segment.")
    company_id = getattr(request.user, "current_company_id", None)
    if company_id is None:
        raise PermissionDenied("Choose a company in the top bar first.")
    return company_id


def _can_edit(request, segment: Segment) -> bool:
    return allowed(request.user, "campaigns.change_segment" if segment.pk else
                   "campaigns.add_segment")


# --- the form ↔ conditions ---------------------------------------------------------------

def _row_ids(data) -> list[int]:
    ids = []
    for raw in data.getlist("row")[: segments.MAX_CONDITIONS + 1]:
        pk = parse_id(raw) if raw != "0" else 0
        if pk is not None and pk <= MAX_ROW and pk not in ids:
            ids.append(pk)
    return ids


def condition_from(data, i: int) -> dict:
    """One row's inputs as a condition (not yet checked)."""
    field = data.get(f"c{i}_field", "")
    op = data.get(f"c{i}_op", "")
    if field.startswith("record:"):
        value = {k: data.get(f"c{i}_{k}", "") for k in ("where", "equals", "date", "days")}
    elif field == "country":
        value = data.getlist(f"c{i}_value")
    else:
        value = data.get(f"c{i}_value", "")
    return {"field": field, "op": op, "value": value}


def conditions_from(data) -> list[dict]:
    return [condition_from(data, i) for i in _row_ids(data)]


def _options(kind: str, company_id: int) -> list[tuple[str, str]]:
    if kind == "countries":
        return [(code, name) for code, name in countries]
    if kind == "language":
        return [(str(k), str(v)) for k, v in LANGUAGE_CHOICES]
    if kind == "kind":
        return list(segments.KIND_LABELS.items())
    if kind == "tag":
        return [(str(t.pk), t.name) for t in PartnerTag.objects.filter(company_id=company_id)]
    if kind == "list":
        return [(str(m.pk), m.name) for m in MailingList.objects.filter(company_id=company_id)]
    return []


def field_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    contact = [(name, label) for name, (label, _, _) in segments.CONTACT_FIELDS.items()
               if name != "list"]
    records = [(f"record:{key}", rt.label_plural)
               for key, rt in segments.record_types_with_partner().items()]
    return [("Contact", contact), ("Mailing lists", [("list", "Mailing list")]),
            ("Business records", records)]


def _date_label(label: str) -> str:
    """"Created at" → "created", "Paid on" → "paid": read before "in the last N days"."""
    label = label.lower()
    for suffix in (" at", " on"):
        label = label.removesuffix(suffix)
    return label


def row_context(i: int, condition: dict, company_id: int, error: str = "") -> dict:
    """What one row shows: its field, the operators of that field, a value input that fits."""
    field, op, value = condition.get("field", ""), condition.get("op", ""), condition.get(
        "value")
    row = {"i": i, "field": field, "op": op, "error": error, "field_choices": field_choices(),
           "value": "", "values": [], "options": [], "kind": "text"}
    if field.startswith("record:"):
        rt = segments.record_types_with_partner().get(field.removeprefix("record:"))
        value = value if isinstance(value, dict) else {}
        row.update(kind="record", ops=list(segments.RECORD_OPS.items()), record=rt)
        if rt is None:
            row["error"] = error or "This record type no longer exists."
            return row
        filters = segments.record_filters(rt.model)
        where = str(value.get("where") or "")
        row.update(
            where=where if where in filters else "", equals=str(value.get("equals") or ""),
            date=str(value.get("date") or segments.default_date(filters)),
            days=str(value.get("days") or ""),
            wheres=[(n, f.label) for n, f in filters.items() if f.kind != "date"],
            dates=[(n, _date_label(f.label)) for n, f in filters.items() if f.kind == "date"])
        if row["where"]:
            row["equals_options"] = filters[row["where"]].options(company_id)
        return row
    if field not in segments.CONTACT_FIELDS:
        row["ops"] = []
        return row
    _, ops, kind = segments.CONTACT_FIELDS[field]
    row.update(ops=list(ops.items()), kind=kind, options=_options(kind, company_id))
    if kind == "countries":
        row["values"] = [str(v) for v in (value if isinstance(value, list) else [value])]
    else:
        row["value"] = "" if value is None else str(value)
    return row


def _rows(conditions: list[dict], ids: list[int], company_id: int,
          errors: dict[int, str]) -> list[dict]:
    return [row_context(i, c, company_id, errors.get(n, ""))
            for n, (i, c) in enumerate(zip(ids, conditions, strict=True))]


# --- pages -----------------------------------------------------------------------------------

def _page(request, segment: Segment, rows: list[dict], errors: list[str], status: int = 200):
    can_edit = _can_edit(request, segment)
    title = f"Segment {segment.name}" if segment.pk else "New segment"
    return render(request, "campaigns/segment_editor.html", {
        **admin.site.each_context(request), "title": title, "segment": segment, "rows": rows,
        "errors": errors, "can_edit": can_edit, "matches": Segment.Match.choices,
        "next_row": max([r["i"] for r in rows], default=-1) + 1,
        "back": reverse("admin:campaigns_segment_changelist"),
        "delete_url": reverse("admin:campaigns_segment_delete", args=[segment.pk])
        if segment.pk and allowed(request.user, "campaigns.delete_segment") else "",
        "count_html": _count_html(segment.rules, segment.match, segment.company_id)},
        status=status)


def _save(request, segment: Segment):
    ids = _row_ids(request.POST)
    conditions = conditions_from(request.POST)
    segment.name = request.POST.get("name", "")[:120]
    segment.description = request.POST.get("description", "")[:5000]
    match = request.POST.get("match", "")
    segment.match = match if match in Segment.Match.values else Segment.Match.ALL
    _, by_row = segments.check(conditions, segment.company_id)
    segment.rules = conditions
    errors: list[str] = []
    if not by_row:
        try:
            segments.save_segment(segment, actor=request.user)
        except ValidationError as exc:
            errors = list(exc.messages)
        else:
            messages.success(request, f"Segment “{segment.name}” saved.")
            return redirect(reverse("campaigns:segment_edit", args=[segment.pk]))
    else:
        errors = ["Some conditions need fixing; see the red lines below."]
    return _page(request, segment, _rows(conditions, ids, segment.company_id, by_row),
                 errors, status=422)


@require_http_methods(["GET", "POST"])
@office_user_required
def segment_new(request):
    segment = Segment(company_id=_company_id(request))
    if request.method == "POST":
        if not _can_edit(request, segment):
            raise PermissionDenied("Only Mail Managers can change segments.")
        return _save(request, segment)
    segment.rules = [{"field": "list", "op": "subscribed", "value": ""}]
    return _page(request, segment, [row_context(0, segment.rules[0], segment.company_id)], [])


@require_http_methods(["GET", "POST"])
@office_user_required
def segment_edit(request, segment_id: int):
    segment = _segment(request, segment_id)
    if request.method == "POST":
        if not _can_edit(request, segment):
            raise PermissionDenied("Only Mail Managers can change segments.")
        return _save(request, segment)
    rules = segment.rules if isinstance(segment.rules, list) else []
    _, by_row = segments.check(rules, segment.company_id)
    rows = _rows(rules, list(range(len(rules))), segment.company_id, by_row)
    return _page(request, segment, rows, [])


# --- htmx fragments ----------------------------------------------------------------------------

@require_GET
@office_user_required
def segment_row(request):
    """One condition row: a new one (`add`, numbered after the `row`s already there) or the
    row `i` again with inputs fitting its newly chosen field."""
    company_id = _company_id(request)
    if request.GET.get("add"):
        ids = _row_ids(request.GET)
        if len(ids) >= segments.MAX_CONDITIONS:
            return HttpResponse(f'<p class="mr-red-line" style="color:#b42318">A segment has '
                                f'at most {segments.MAX_CONDITIONS} conditions.</p>')
        i = min(max(ids, default=-1) + 1, MAX_ROW)
        condition = {"field": "list", "op": "subscribed", "value": ""}
    else:
        i = parse_id(request.GET.get("i", "")) if request.GET.get("i") != "0" else 0
        if i is None or i > MAX_ROW:
            return HttpResponse("This condition row is not understood; reload the page.",
                                status=400)
        condition = condition_from(request.GET, i)
        field = condition["field"]
        if field != request.GET.get(f"c{i}_was", field):  # a new field: start it afresh
            condition["value"] = [] if field == "country" else (
                {} if field.startswith("record:") else "")
            condition["op"] = ""
        ops = (segments.CONTACT_FIELDS[field][1] if field in segments.CONTACT_FIELDS
               else segments.RECORD_OPS)
        if condition["op"] not in ops:
            condition["op"] = next(iter(ops))
    html = render_to_string("campaigns/segment_row.html",
                            {"row": row_context(i, condition, company_id)}, request=request)
    response = HttpResponse(html)
    response["HX-Trigger-After-Settle"] = "mr-segment-changed"
    return response


def _count_html(rules, match: str, company_id: int) -> str:
    cleaned, errors = segments.check(rules, company_id)
    context = {"total": None, "names": [], "problems": []}
    if errors:
        context["problems"] = [f"Condition {i + 1}: {msg}" for i, msg in sorted(errors.items())]
    elif cleaned:
        found = segments.matching(cleaned, match, company_id)
        total = found.count()
        names = [str(p) for p in found.select_related("parent").order_by("name", "pk")[:SHOWN]]
        context.update(total=total, names=names,
                       total_text=f"{total:,} contact{'s' if total != 1 else ''}",
                       more=f"{total - len(names):,}" if total > len(names) else "")
    return render_to_string("campaigns/segment_count.html", context)


@require_http_methods(["GET", "POST"])
@office_user_required
def segment_count(request):
    """The live count: of the editor's current rows (POST), or of a saved `segment` (GET,
    the changelist's lazy column)."""
    if request.method == "GET":
        segment_id = parse_id(request.GET.get("segment", ""))
        if segment_id is None:
            return HttpResponse("—")
        segment = _segment(request, segment_id)
        try:
            return HttpResponse(f"{segments.count(segment):,}")
        except ValidationError as exc:
            return HttpResponse(f'<span style="color:#b42318" title="{escape(" ".join(
                exc.messages))}">needs fixing</span>')
    segment_id = parse_id(request.POST.get("segment", ""))
    company_id = _segment(request, segment_id).company_id if segment_id else _company_id(
        request)
    match = request.POST.get("match", "")
    match = match if match in Segment.Match.values else Segment.Match.ALL
    return HttpResponse(_count_html(conditions_from(request.POST), match, company_id))
