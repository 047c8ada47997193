"""/campaigns/c/…: a campaign's page — its state in plain words, the progress bar while the
worker prepares it, the actions its state allows (send now after a confirm step showing the
audience, schedule, pause, resume, cancel, duplicate, test send), a preview of the mail, its
figures, chart, links, exclusions and the per-recipient trace list (with a CSV export) — and
the editor's live audience count.

Every page looks the campaign up among the viewer's companies: another company's campaign is
a 404, like a missing one. Anyone who may see campaigns sees the page; only those who may
change them get the buttons, and a POST from anyone else is a 403. Writes go through
`campaign_services`; a refusal is a red line, never a 500.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.campaigns import campaign_services, stats
from mailroom.campaigns.campaign_admin import company_lists
from mailroom.campaigns.campaign_models import (
    Campaign,
    CampaignRecipient,
    Exclusion,
    Segment,
)
from mailroom.campaigns.engine import ab
from mailroom.campaigns.views import _csv_response
from mailroom.core.access import allowed
from mailroom.core.decorators import office_user_required
from mailroom.lib.params import parse_id
from mailroom.lib.sandbox import TemplateError

VIEW_PERM = "campaigns.view_campaign"
RUN_PERM = "campaigns.change_campaign"
ADD_PERM = "campaigns.add_campaign"
TRACE_PAGE = 50
State = Campaign.State
Status = CampaignRecipient.Status
RATE_NAMES = ("opened", "clicked", "replied", "bounced", "unsubscribed", "complained")
SERIES = (("opened", "#7c3aed"), ("clicked", "#059669"), ("bounced", "#dc2626"),
          ("unsubscribed", "#d97706"))


# --- lookups ------------------------------------------------------------------------------------

def _campaign(request, campaign_id: int) -> Campaign:
    if not allowed(request.user, VIEW_PERM):
        raise Http404("No such campaign.")
    found = Campaign.objects.for_user(request.user).filter(pk=campaign_id).first()
    if found is None:
        raise Http404("No such campaign.")
    return found


def _require(request, perm: str = RUN_PERM) -> None:
    if not allowed(request.user, perm):
        raise PermissionDenied("Your roles do not allow you to run campaigns: ask a Mail "
                               "Manager.")


def _page(request, template: str, **context):
    return render(request, template, {**admin.site.each_context(request), **context})


def _lines(exc: ValidationError | PermissionDenied) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


# --- the audience count -------------------------------------------------------------------------

class _Selection:
    """The campaign with the lists ticked in the editor instead of its saved ones, for
    `audience_preview` (which only reads): the live count follows the form before saving."""

    def __init__(self, campaign: Campaign, lists, exclude_lists, segments):
        self._campaign, self.lists, self.exclude_lists = campaign, lists, exclude_lists
        self.segments = segments

    def __getattr__(self, name):
        return getattr(self._campaign, name)


def audience_text(preview: dict | None) -> str:
    if preview is None:
        return "Choose one or more lists or segments to see how many people receive it."
    total = preview.get("total", 0)
    reasons = {k: v for k, v in (preview.get("exclusions") or {}).items() if v}
    text = f"{total:,} recipient{'s' if total != 1 else ''}"
    if reasons:
        labels = dict(Exclusion.choices)
        excluded = sum(reasons.values())
        parts = ", ".join(f"{count:,} {labels.get(key, key).lower()}" for key, count in
                          sorted(reasons.items(), key=lambda item: -item[1]))
        text += f" · {excluded:,} excluded ({parts})"
    return text


def _preview(campaign: Campaign, list_ids=None, exclude_ids=None,
             segment_ids=None) -> dict | None:
    if list_ids is None:
        if campaign.pk is None or not (campaign.lists.exists() or campaign.segments.exists()):
            return None
        return campaign_services.audience_preview(campaign)
    own = company_lists(campaign.company_id)
    lists = own.filter(pk__in=list_ids)
    segments = Segment.objects.filter(company_id=campaign.company_id,
                                      pk__in=segment_ids or [])
    if not lists.exists() and not segments.exists():
        return None
    return campaign_services.audience_preview(
        _Selection(campaign, lists, own.filter(pk__in=exclude_ids or []), segments))


def audience_block(campaign: Campaign) -> str:
    """The count beside the editor's lists: shown as the page loads, fetched again by htmx
    when a list is ticked or unticked."""
    return render_to_string("campaigns/campaign_audience.html", {
        "campaign": campaign, "text": audience_text(_preview(campaign)),
        "url": reverse("campaigns:campaign_audience")})


def _ids(values) -> list[int]:
    return [pk for pk in (parse_id(value) for value in values) if pk is not None]


@require_GET
@office_user_required
def audience(request):
    """The count for `campaign` (saved audience), or for the ticked `lists` and `segments`
    minus `exclude_lists` when `edited` is set (the editor's current choice)."""
    if not allowed(request.user, VIEW_PERM):
        raise Http404("No such campaign.")
    campaign_id = parse_id(request.GET.get("campaign", ""))
    if campaign_id is not None:
        campaign = _campaign(request, campaign_id)
    elif request.user.current_company_id:
        campaign = Campaign(company_id=request.user.current_company_id)
    else:
        return HttpResponse("Choose a company in the top bar first.")
    try:
        if request.GET.get("edited"):
            preview = _preview(campaign, _ids(request.GET.getlist("lists")),
                               _ids(request.GET.getlist("exclude_lists")),
                               _ids(request.GET.getlist("segments")))
        else:
            preview = _preview(campaign)
    except ValidationError as exc:
        return HttpResponse(f'<span class="mr-red-line" style="color:#b42318">'
                            f'{escape(_lines(exc))}</span>')
    return HttpResponse(escape(audience_text(preview)))


# --- the page ------------------------------------------------------------------------------------

def plain_state(campaign: Campaign) -> str:
    """Where the campaign stands, in words; the reason the engine or a person gave first."""
    if campaign.state_reason and campaign.state in (State.PAUSED, State.FAILED,
                                                    State.CANCELLED):
        return campaign.state_reason

    def when(moment) -> str:
        return date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else ""

    return {
        State.DRAFT: "Not sent yet. Edit it, send yourself a test, then send it now or "
                     "schedule it.",
        State.SCHEDULED: f"Will be sent on {when(campaign.scheduled_at)}.",
        State.PREPARING: "The worker is finding the recipients and queueing their mails.",
        State.SENDING: "Every mail is queued; the outbox is sending them.",
        State.PAUSED: "Paused: nothing more is queued or sent until it is resumed.",
        State.CANCELLED: "Cancelled: mails not sent by then were dropped.",
        State.DONE: f"Sent{' on ' + when(campaign.finished_at) if campaign.finished_at else ''}.",
        State.FAILED: "The worker could not prepare it.",
    }.get(campaign.state, campaign.state_reason)


def _actions(campaign: Campaign) -> set[str]:
    state = campaign.state
    found = {"duplicate", "test"}
    if state in (State.DRAFT, State.SCHEDULED):
        found |= {"edit", "send", "schedule"}
    if state == State.SCHEDULED:
        found |= {"unschedule", "cancel"}
    if state in (State.PREPARING, State.SENDING):
        found |= {"pause", "cancel"}
    if state == State.PAUSED:
        found |= {"resume", "cancel"}
    return found


def _rates(figures: dict) -> list[dict]:
    rates = figures.get("rates") or {}
    shown = [("targeted", "Targeted", None), ("excluded", "Excluded", None),
             ("sent", "Sent", None), ("delivered", "Delivered", None)]
    sent = figures.get("sent", 0)  # a rate of nothing sent is no rate
    shown += [(name, name.capitalize(), rates.get(name) if sent else None)
              for name in RATE_NAMES]
    cards = [{"key": key, "label": label, "value": figures.get(key, 0), "rate": rate}
             for key, label, rate in shown]
    if figures.get("machine_opened"):
        cards.insert(5, {"key": "machine_opened", "label": "Machine opens",
                         "value": figures["machine_opened"], "rate": None})
    return cards


def chart(points: list[dict], width: int = 480, height: int = 170) -> dict | None:
    """The events per hour as grouped SVG bars (server-rendered: no chart library). Numbers
    are formatted here: a template would localise floats ("12,5" in French)."""
    series = [(key, colour) for key, colour in SERIES if any(p.get(key) for p in points)]
    if not points or not series:
        return None
    left, right, top_pad, bottom = 30, 8, 12, 22
    top = max(max(p.get(key, 0) for p in points) for key, _ in series) or 1
    inner_w, inner_h = width - left - right, height - top_pad - bottom
    group = inner_w / len(points)
    bar = min(max(group * 0.8 / len(series), 0.5), 24)
    pad = (group - bar * len(series)) / 2  # the hour's bars centred in its slot
    bars = []
    for index, point in enumerate(points):
        for offset, (key, colour) in enumerate(series):
            value = point.get(key, 0)
            if not value:
                continue
            h = value / top * inner_h
            bars.append({"x": f"{left + index * group + pad + offset * bar:.1f}",
                         "y": f"{top_pad + inner_h - h:.1f}", "w": f"{bar:.1f}",
                         "h": f"{h:.1f}", "colour": colour,
                         "title": f"{key.capitalize()}: {value}"})
    first, last = points[0]["at"], points[-1]["at"]
    return {"width": width, "height": height, "bars": bars, "top": top,
            "legend": [{"label": key.capitalize(), "colour": colour,
                        "total": sum(p.get(key, 0) for p in points)} for key, colour in series],
            "first": timezone.localtime(first) if timezone.is_aware(first) else first,
            "last": timezone.localtime(last) if timezone.is_aware(last) else last,
            "x0": left, "x1": width - right, "y0": top_pad, "y1": top_pad + inner_h,
            "label_y": height - 6, "hours": len(points)}


def _exclusions(campaign: Campaign) -> list[tuple[str, int]]:
    labels = dict(Exclusion.choices)
    return [(labels.get(key, key), count) for key, count in
            sorted((campaign.exclusions or {}).items(), key=lambda item: -item[1]) if count]


def _traces(request, campaign: Campaign) -> dict:
    status = request.GET.get("status", "")
    rows = CampaignRecipient.objects.filter(campaign=campaign).order_by("id")
    if status in Status.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    page = Paginator(rows, TRACE_PAGE).get_page(request.GET.get("page"))
    return {"traces": page, "trace_status": status, "statuses": Status.choices}


def _mail_preview(campaign: Campaign) -> dict:
    """The mail as a sample contact gets it, rendered by the engine; nothing if the engine
    is not installed or the campaign has no body yet."""
    if not (campaign.body_html or "").strip():
        return {}
    try:
        from mailroom.campaigns.engine.render import CampaignRenderer
    except ImportError:
        return {}
    first = (CampaignRecipient.objects.filter(campaign=campaign)
             .exclude(status=Status.EXCLUDED).order_by("id").first())
    # never the real trace: its links would count the preview's pixel and clicks as theirs
    sample = CampaignRecipient(campaign=campaign, email=first.email if first else
                               "ada@example.com", name=first.name if first else "Ada Lovelace",
                               lang=campaign.lang, id=None)
    try:
        rendered = CampaignRenderer(campaign).render(sample)
    except ValidationError as exc:
        return {"preview_error": _lines(exc)}
    except TemplateError as exc:
        return {"preview_error": str(exc)}
    return {"preview_html": rendered.html, "preview_subject": rendered.subject,
            "preview_to": sample.email}


def _progress_context(campaign: Campaign) -> dict:
    return {"campaign": campaign, "polling": campaign.state == State.PREPARING,
            "state_text": plain_state(campaign)}


def _ab(campaign: Campaign) -> dict | None:
    """The A/B test's two variants side by side (figures kept at the decision, else now)."""
    if not campaign.ab_test:
        return None
    counts = campaign.ab_figures or ab.figures(campaign)
    metric = "opens" if campaign.ab_metric == "opened" else "clicks"
    variants = [{"name": v.upper(), "winner": campaign.ab_winner == v,
                 "subject": (campaign.subject_b or campaign.subject) if v == "b"
                 else campaign.subject, **counts.get(v, {})} for v in ("a", "b")]
    return {"variants": variants, "metric": metric, "sample": campaign.ab_sample,
            "hours": campaign.ab_hours, "decided_at": campaign.ab_decided_at}


@require_GET
@office_user_required
def campaign_page(request, campaign_id: int):
    campaign = _campaign(request, campaign_id)
    figures = stats.summary(campaign)
    may_run = allowed(request.user, RUN_PERM)
    context = {
        **_progress_context(campaign), **_traces(request, campaign),
        "title": campaign.name, "may_run": may_run,
        "may_add": allowed(request.user, ADD_PERM),
        "actions": _actions(campaign) if may_run else set(),
        "figures": figures, "cards": _rates(figures), "chart": chart(stats.timeline(campaign)),
        "links": stats.links(campaign), "exclusions": _exclusions(campaign),
        "ab": _ab(campaign),
        "lists": list(campaign.lists.all()), "exclude_lists": list(campaign.exclude_lists.all()),
        "back": reverse("admin:campaigns_campaign_changelist"),
        "edit_url": reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        "test_addresses": request.user.email or "",
        "now_local": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        **_mail_preview(campaign),
    }
    return _page(request, "campaigns/campaign_page.html", **context)


@require_GET
@office_user_required
def campaign_progress(request, campaign_id: int):
    campaign = _campaign(request, campaign_id)
    response = render(request, "campaigns/partials/campaign_progress.html",
                      _progress_context(campaign))
    if request.htmx and campaign.state != State.PREPARING:
        response["HX-Refresh"] = "true"  # done: the page shows the new state's buttons
    return response


# --- actions -------------------------------------------------------------------------------------

def _back(campaign: Campaign):
    return redirect("campaigns:campaign", campaign_id=campaign.pk)


@require_http_methods(["GET", "POST"])
@office_user_required
def send_now(request, campaign_id: int):
    """GET: the confirm step with the audience count; POST: hand it to the worker."""
    campaign = _campaign(request, campaign_id)
    _require(request)
    if request.method == "POST":
        try:
            campaign = campaign_services.send_now(campaign, actor=request.user)
        except ValidationError as exc:
            messages.error(request, _lines(exc))
        else:
            messages.success(request, f"“{campaign}” is on its way: the worker is queueing "
                                      "its mails.")
        return _back(campaign)
    try:
        preview = _preview(campaign)
        error = ""
    except ValidationError as exc:
        preview, error = None, _lines(exc)
    return _page(request, "campaigns/campaign_send.html", title=f"Send “{campaign}” now",
                 campaign=campaign, audience=audience_text(preview), error=error,
                 empty=not preview or not preview.get("total"),
                 back=reverse("campaigns:campaign", args=[campaign.pk]))


@require_POST
@office_user_required
def schedule(request, campaign_id: int):
    campaign = _campaign(request, campaign_id)
    _require(request)
    raw = request.POST.get("scheduled_at", "")[:40]
    try:
        moment = parse_datetime(raw.strip())
        if moment is not None and timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        messages.error(request, "Choose a date and time to send it.")
        return _back(campaign)
    try:
        campaign = campaign_services.schedule(campaign, moment, actor=request.user)
    except ValidationError as exc:
        messages.error(request, _lines(exc))
    else:
        messages.success(request, f"Scheduled: {plain_state(campaign)}")
    return _back(campaign)


def _simple(service, done: str, perm: str = RUN_PERM):
    @require_POST
    @office_user_required
    def view(request, campaign_id: int):
        campaign = _campaign(request, campaign_id)
        _require(request, perm)
        try:
            result = service(campaign, actor=request.user)
        except ValidationError as exc:
            messages.error(request, _lines(exc))
            return _back(campaign)
        messages.success(request, done.format(campaign=campaign, result=result))
        return _back(result if isinstance(result, Campaign) else campaign)

    view.__name__ = service.__name__
    return view


pause = _simple(campaign_services.pause, "Paused: nothing more goes out until you resume.")
resume = _simple(campaign_services.resume, "Resumed: sending goes on.")
cancel = _simple(campaign_services.cancel, "Cancelled: mails not sent yet are dropped.")
unschedule = _simple(campaign_services.unschedule, "Back to draft: it will not be sent "
                                                    "until you send or schedule it again.")
duplicate = _simple(campaign_services.duplicate, "Created the draft “{result}”.", ADD_PERM)


@require_POST
@office_user_required
def test_send(request, campaign_id: int):
    """Queue the campaign to a few addresses; with htmx the form comes back with its line."""
    campaign = _campaign(request, campaign_id)
    _require(request)
    raw = request.POST.get("addresses", "")[:2000]
    addresses = [part for part in raw.replace(";", ",").replace("\n", ",").split(",")
                 if part.strip()]
    ok, line = False, ""
    try:
        count = campaign_services.test_send(campaign, addresses, actor=request.user)
    except ValidationError as exc:
        line = _lines(exc)
    else:
        ok = True
        line = f"Test sent to {', '.join(a.strip() for a in addresses)}" + (
            "." if count == len(addresses) else f" ({count} mails queued).")
    if request.htmx:
        return render(request, "campaigns/partials/campaign_test.html",
                      {"campaign": campaign, "ok": ok, "line": line, "addresses": raw})
    (messages.success if ok else messages.error)(request, line)
    return _back(campaign)


@require_GET
@office_user_required
def recipients_csv(request, campaign_id: int):
    """Every trace of the campaign (or those of one status), streamed."""
    campaign = _campaign(request, campaign_id)
    status = request.GET.get("status", "")
    rows = CampaignRecipient.objects.filter(campaign=campaign).order_by("id")
    if status in Status.values:
        rows = rows.filter(status=status)

    def stamp(moment):
        return moment.isoformat() if moment else ""

    def lines():
        for trace in rows.iterator(chunk_size=2000):
            yield [trace.email, trace.name, trace.lang, trace.variant, trace.status,
                   trace.exclusion, trace.reason, stamp(trace.opened_at),
                   "yes" if trace.machine_open else "", stamp(trace.clicked_at),
                   stamp(trace.replied_at), stamp(trace.unsubscribed_at)]

    return _csv_response(f"{campaign.name} recipients {timezone.localdate().isoformat()}.csv",
                         ["email", "name", "language", "variant", "status", "exclusion",
                          "reason", "opened_at", "machine_open", "clicked_at", "replied_at",
                          "unsubscribed_at"], lines())
