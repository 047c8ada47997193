"""The email hub's pages beside the admin: dashboard, a mail's body, and its actions.

Mails are loaded through `OutgoingMail.objects.for_user` (another company's mail is a 404);
actions are POST-only, for Mail Managers (403 for everyone else), and go through
`outgoing.services`, which audits them.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, DateTimeField, Max
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from mailroom.core.decorators import office_user_required
from mailroom.core.roles import Role
from mailroom.core.views import local_target
from mailroom.outgoing import services
from mailroom.outgoing.models import OutgoingMail, SendAttempt

MAIL_STATE_COLOURS = {
    "outgoing": "info", "sending": "primary", "sent": "success", "deferred": "warning",
    "exception": "danger", "uncertain": "warning",
}
RECIPIENT_COLOURS = {"sent": "success", "failed": "danger", "bounced": "danger",
                     "pending": "info"}
ATTEMPT_COLOURS = {"sent": "success", "partial": "warning", "deferred": "warning",
                   "failed": "danger"}
SEND_NOW_STATES = (OutgoingMail.State.OUTGOING, OutgoingMail.State.DEFERRED,
                   OutgoingMail.State.UNCERTAIN)
ACTIONS = {
    # name: (service, button label, success words, refusal words)
    "send_now": (services.send_now, "Send now", "It goes out at the next worker pass.",
                 "Only waiting mails can be sent now."),
    "retry": (services.retry, "Retry", "Queued again.",
              "Only failed, deferred, uncertain or cancelled mails can be retried."),
    "cancel": (services.cancel, "Cancel", "Cancelled: it will not be sent.",
               "Mails already sent, being sent or cancelled cannot be cancelled."),
}
# What a mail's body may load in the hub: inline styles and embedded images, nothing remote,
# nothing that runs. The iframe is sandboxed too.
# how the SMTP layer words a temporary refusal while the mail still waits for its next try;
# once the mail is settled (failed for good, cancelled) nothing will retry it any more
RETRY_PROMISE = "for now, it will be retried"
LIST_REASON_CHARS = 60
BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; font-src data:; "
            "sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
CHART_DAYS = 14
ATTEMPTS_SHOWN = 200
# unfold draws bars thin and overlapping by default; the sent/failed pair needs them side by
# side, and a count axis in whole numbers.
CHART_OPTIONS = {
    "animation": False, "responsive": True, "maintainAspectRatio": False,
    "plugins": {"legend": {"display": False}, "tooltip": {"enabled": True}},
    "datasets": {"bar": {"borderRadius": 3, "maxBarThickness": 14, "categoryPercentage": 0.6,
                         "barPercentage": 0.9}},
    "scales": {
        "x": {"grid": {"display": False}, "border": {"display": False},
              "ticks": {"color": "#9ca3af", "maxRotation": 0, "autoSkip": True}},
        "y": {"beginAtZero": True, "border": {"display": False},
              "ticks": {"color": "#9ca3af", "precision": 0, "maxTicksLimit": 5},
              "grid": {"color": "rgba(156, 163, 175, 0.25)"}},
    },
}


def is_mail_manager(user) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.MAIL_MANAGER))


def available_actions(mail: OutgoingMail) -> list[tuple[str, str]]:
    """The actions that make sense for the mail's state: (name, label)."""
    names = []
    if mail.state in SEND_NOW_STATES:
        names.append("send_now")
    if mail.state in OutgoingMail.RETRYABLE_STATES:
        names.append("retry")
    if mail.state in OutgoingMail.CANCELLABLE_STATES:
        names.append("cancel")
    return [(name, ACTIONS[name][1]) for name in names]


def reason_for_state(reason: str, state: str) -> str:
    """A stored failure reason in words true for the mail's state now: a temporary refusal
    says "it will be retried" only while the mail still waits for that retry."""
    if not reason or state in (*OutgoingMail.WAITING_STATES, OutgoingMail.State.SENDING):
        return reason
    return reason.replace(RETRY_PROMISE, "temporarily")


def failure_summary(mail: OutgoingMail) -> tuple[str, str] | None:
    """(a few plain words, the whole reason) for the hub's list; None when nothing failed."""
    reason = reason_for_state(mail.failure_reason, mail.state)
    if not mail.failure_type and not reason:
        return None
    if mail.failure_type:
        short = mail.get_failure_type_display()
    else:
        short = reason if len(reason) <= LIST_REASON_CHARS else \
            reason[:LIST_REASON_CHARS - 1].rstrip() + "…"
    return short, reason or short


def recipient_rows(mail: OutgoingMail, recipients) -> list[dict]:
    """The recipients of the detail page with the status and reason true for the mail now:
    a pending recipient of a cancelled mail was simply not sent."""
    cancelled = mail.state == OutgoingMail.State.CANCELLED
    rows = []
    for r in recipients:
        not_sent = cancelled and r.status == r.Status.PENDING
        rows.append({
            "recipient": r,
            "status": "Not sent (cancelled)" if not_sent else r.get_status_display(),
            "colour": "" if not_sent else RECIPIENT_COLOURS.get(r.status, ""),
            "reason": reason_for_state(r.failure_reason, mail.state),
        })
    return rows


def record_link(mail: OutgoingMail) -> tuple[str, str] | None:
    """(admin URL or "", label) of the record the mail is about, or None."""
    if mail.content_type_id is None or mail.object_id is None:
        return None
    content_type = mail.content_type
    record = mail.record
    label = content_type.name.capitalize()
    if record is None:
        return "", f"{label} #{mail.object_id} (deleted)"
    try:
        url = reverse(f"admin:{content_type.app_label}_{content_type.model}_change",
                      args=[mail.object_id])
    except NoReverseMatch:
        url = ""
    return url, f"{label}: {record}"


def headers_of(mail: OutgoingMail) -> list[tuple[str, str]]:
    """The headers Mailroom knows for the mail (the sender adds Date and its own)."""
    recipients = list(mail.recipients.all())

    def addresses(kind: str) -> str:
        return ", ".join(f"{r.name} <{r.address}>" if r.name else r.address
                         for r in recipients if r.kind == kind)

    rows = [("From", mail.email_from), ("Reply-To", mail.reply_to), ("To", addresses("to")),
            ("Cc", addresses("cc")), ("Bcc", addresses("bcc")), ("Subject", mail.subject),
            ("Message-ID", mail.message_id)]
    if mail.is_automatic:
        rows.append(("Auto-Submitted", "auto-generated"))
    rows += [(str(k), str(v)) for k, v in sorted(mail.headers.items())]
    return [(name, value) for name, value in rows if value]


def mail_detail_context(mail: OutgoingMail, user) -> dict:
    recipients = list(mail.recipients.select_related("partner"))
    attempt_rows = SendAttempt.objects.filter(mail=mail)
    attempts = list(attempt_rows.select_related("server")[:ATTEMPTS_SHOWN])
    return {
        "mail": mail,
        "state_colour": MAIL_STATE_COLOURS.get(mail.state, ""),
        "failure_reason": reason_for_state(mail.failure_reason, mail.state),
        "recipients": recipient_rows(mail, recipients),
        "attempts": [(a, ATTEMPT_COLOURS.get(a.outcome, ""),
                      reason_for_state(a.smtp_reply, mail.state)) for a in attempts],
        "attempts_total": attempt_rows.count() if len(attempts) == ATTEMPTS_SHOWN
        else len(attempts),
        "headers": headers_of(mail),
        "record": record_link(mail),
        "attachments": list(mail.attachments.all()),
        "can_manage": is_mail_manager(user),
        "actions": available_actions(mail) if is_mail_manager(user) else [],
        "uncertain": mail.was_uncertain or mail.state == OutgoingMail.State.UNCERTAIN,
        "body_url": reverse("outgoing:mail_body", args=[mail.pk]),
        "hub_url": reverse("admin:outgoing_outgoingmail_changelist"),
    }


def state_counts(user) -> list[dict]:
    """Mails of the user's current company by state, in the order of the state machine."""
    rows = dict(OutgoingMail.objects.for_current_company(user).order_by()
                .values_list("state").annotate(n=Count("id")))
    hub = reverse("admin:outgoing_outgoingmail_changelist")
    return [{"state": value, "label": label, "count": rows.get(value, 0),
             "text": f"{label} {rows.get(value, 0)}",
             "colour": MAIL_STATE_COLOURS.get(value, ""),
             "link": f"{hub}?state__exact={value}"}
            for value, label in OutgoingMail.State.choices]


def _company_zone(user) -> ZoneInfo:
    company = user.current_company
    try:
        return ZoneInfo(company.timezone) if company and company.timezone else \
            timezone.get_current_timezone()
    except (KeyError, ValueError):
        return timezone.get_current_timezone()


def daily_chart(user, days: int = CHART_DAYS) -> dict:
    """Sent and failed mails per day over the last `days` days, in the company's time zone.

    A mail counts as sent on the day it was accepted, as failed on the day of its last
    attempt (or its creation, for mails refused before any SMTP traffic)."""
    zone = _company_zone(user)
    today = timezone.localtime(timezone.now(), zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=zone)
    mails = OutgoingMail.objects.for_current_company(user).order_by()
    sent = dict(mails.filter(state=OutgoingMail.State.SENT, sent_at__gte=since)
                .annotate(day=TruncDate("sent_at", tzinfo=zone))
                .values_list("day").annotate(n=Count("id")))
    failed_at = Coalesce(Max("attempts__started_at"), "created_at", output_field=DateTimeField())
    failed_rows = (mails.filter(state=OutgoingMail.State.EXCEPTION)
                   .annotate(at=failed_at).filter(at__gte=since).values_list("at", flat=True))
    failed: dict = {}
    for at in failed_rows:
        day = timezone.localtime(at, zone).date()
        failed[day] = failed.get(day, 0) + 1
    labels, sent_series, failed_series = [], [], []
    for offset in range(days):
        day = first + timedelta(days=offset)
        labels.append(day.strftime("%d %b"))
        sent_series.append(sent.get(day, 0))
        failed_series.append(failed.get(day, 0))
    return {
        "labels": labels,
        "datasets": [
            {"label": "Sent", "data": sent_series,
             "backgroundColor": "var(--color-primary-600)"},
            {"label": "Failed", "data": failed_series, "backgroundColor": "#dc2626"},
        ],
        "total_sent": sum(sent_series),
        "total_failed": sum(failed_series),
    }


def needs_attention(user, limit: int = 8) -> list[dict]:
    """The latest failed, delayed or uncertain mails of the current company."""
    mails = (OutgoingMail.objects.for_current_company(user)
             .filter(state__in=(OutgoingMail.State.EXCEPTION, OutgoingMail.State.DEFERRED,
                                OutgoingMail.State.UNCERTAIN))
             .prefetch_related("recipients").order_by("-created_at", "-id")[:limit])
    return [{"mail": mail, "colour": MAIL_STATE_COLOURS.get(mail.state, ""),
             "to": ", ".join(r.address for r in mail.recipients.all()[:3]),
             "link": reverse("admin:outgoing_outgoingmail_change", args=[mail.pk])}
            for mail in mails]


def _mail_for(request, pk: int) -> OutgoingMail:
    mail = OutgoingMail.objects.for_user(request.user).filter(pk=pk).first()
    if mail is None:
        raise Http404("No such email.")
    return mail


@office_user_required
@require_GET
def dashboard(request):
    if not request.user.has_perm("outgoing.view_outgoingmail"):
        raise PermissionDenied
    chart = daily_chart(request.user)
    context = {
        **admin.site.each_context(request),
        "title": "Email dashboard",
        "counts": state_counts(request.user),
        "chart_json": json.dumps({"labels": chart["labels"], "datasets": chart["datasets"]}),
        "chart_options": json.dumps(CHART_OPTIONS),
        "chart": chart,
        "days": CHART_DAYS,
        "hub_url": reverse("admin:outgoing_outgoingmail_changelist"),
        "company": request.user.current_company,
        "attention": needs_attention(request.user),
    }
    return render(request, "outgoing/dashboard.html", context)


@office_user_required
@require_GET
def mail_body(request, pk: int):
    """The mail's HTML for the hub's sandboxed iframe: nothing remote loads, nothing runs."""
    mail = _mail_for(request, pk)
    if mail.body_html:
        body = mail.body_html
    else:
        from django.utils.html import escape

        body = (f'<pre style="white-space:pre-wrap;font:14px/1.5 system-ui,sans-serif">'
                f"{escape(mail.body_text)}</pre>")
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = BODY_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@office_user_required
@require_http_methods(["GET", "POST"])
def mail_action(request, pk: int, action: str):
    """Send now / Retry / Cancel one mail. From the chatter (htmx) it answers the message's
    status line; from the detail page it redirects back with a message. A GET acts on
    nothing: for Cancel it is the confirmation page, whose button makes the POST."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    mail = _mail_for(request, pk)
    if not is_mail_manager(request.user):
        raise PermissionDenied("Only Mail Managers can act on the email hub.")
    if request.method == "GET":
        if action != "cancel":
            return HttpResponseNotAllowed(["POST"])
        return cancel_confirmation(request, [mail], single=True)
    service, _label, done, refused = ACTIONS[action]
    try:
        count = service([mail], actor=request.user)
    except ValidationError as exc:
        count, refused = 0, " ".join(exc.messages)
    mail.refresh_from_db()
    if request.htmx and request.POST.get("from") == "chatter":
        return _chatter_status(request, mail, error="" if count else refused)
    if count:
        messages.success(request, done)
    else:
        messages.error(request, f"Nothing done: {refused}")
    back = local_target(request, request.POST.get("next", "")) or reverse(
        "admin:outgoing_outgoingmail_change", args=[mail.pk])
    return HttpResponseRedirect(back)


def cancel_confirmation(request, mails: list[OutgoingMail], *, single: bool,
                        selected: list[str] | None = None) -> HttpResponse:
    """"Cancel these emails?" — the page between the Cancel button and the cancelling POST
    (one mail from its detail page, or the hub's bulk action with the selected ids)."""
    cancellable = [m for m in mails if m.state in OutgoingMail.CANCELLABLE_STATES]
    back = local_target(request, request.GET.get("next", "")) if single else ""
    if single and not back:
        back = reverse("admin:outgoing_outgoingmail_change", args=[mails[0].pk])
    context = {
        **admin.site.each_context(request),
        "title": "Cancel this email?" if single else f"Cancel {len(cancellable)} email(s)?",
        "opts": OutgoingMail._meta,
        "mails": [(m, ", ".join(r.address for r in m.recipients.all()[:3]) or "—",
                   m.get_state_display()) for m in cancellable],
        "skipped": len(mails) - len(cancellable),
        "single": single,
        "selected": selected or [],
        "action_url": reverse("outgoing:mail_action", args=[mails[0].pk, "cancel"])
        if single else reverse("admin:outgoing_outgoingmail_changelist"),
        "back_url": back or reverse("admin:outgoing_outgoingmail_changelist"),
        "hub_url": reverse("admin:outgoing_outgoingmail_changelist"),
    }
    return render(request, "outgoing/admin/mail_cancel.html", context)


def _chatter_status(request, mail: OutgoingMail, error: str = "") -> HttpResponse:
    message = mail.chatter_message
    if message is None:
        raise Http404("The email is not linked to a message.")
    mails = list(OutgoingMail.objects.for_user(request.user).filter(chatter_message=message)
                 .order_by("created_at", "id"))
    return render(request, "chatter/partials/mail_status.html", {
        "message": message, "mails": mails, "mail_error": error,
    })

