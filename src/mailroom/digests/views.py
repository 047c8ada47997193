"""The back-office pages of a digest beyond its form: the preview for a chosen user (the
email in a sandboxed frame, served with a strict CSP), Send now (to me, or to every
recipient after a confirmation), Activate/Deactivate and "back to the chosen periodicity".

Permissions are the services' (`send_now`, `set_active`, `restore_periodicity`); the pages
only look the digest up among the viewer's companies (another company's digest is a 404).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.core import navigation
from mailroom.core.access import allowed, perm
from mailroom.core.decorators import office_user_required
from mailroom.core.models import User
from mailroom.digests import mail, periods, sending, services, tips
from mailroom.digests.board import Board
from mailroom.digests.models import Digest
from mailroom.lib.params import parse_id

# the email is somebody else's HTML: no scripts, no requests, no forms, only our own frame
BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
            "sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


def register_navigation() -> None:
    """The sidebar entry (called from DigestsConfig.ready()); idempotent."""
    if not any(e.url_name == "admin:digests_digest_changelist" for e in navigation.ENTRIES):
        navigation.add_model("Email", "Digests", "monitoring", Digest)


def visible_digest(user, digest_id: int) -> Digest:
    """A digest of the viewer's companies they may view; anything else is a 404."""
    if not allowed(user, perm(Digest, "view")):
        raise Http404("No such digest.")
    digest = Digest.objects.for_user(user).select_related("company").filter(
        pk=digest_id).first()
    if digest is None:
        raise Http404("No such digest.")
    return digest


def can_change(user, digest: Digest) -> bool:
    return allowed(user, perm(Digest, "change"))


def preview_users(viewer, digest: Digest):
    """Whom the viewer may preview the digest for: anyone of its company for those who may
    change digests, themselves otherwise."""
    users = User.objects.filter(companies=digest.company_id, is_active=True)
    if not can_change(viewer, digest):
        users = users.filter(pk=viewer.pk)
    return users.order_by("first_name", "last_name", "username").distinct()


def render_digest(digest: Digest, user, *, now: datetime | None = None,
                  period: periods.Period | None = None,
                  board: Board | None = None) -> tuple[str, str, periods.Period]:
    """(subject, html, period): exactly what `user` would get for the latest complete period
    (or `period`), images inline as data: URIs when the mail module offers a preview."""
    now = now or timezone.now()
    period = period or periods.last_complete(digest.periodicity, now, digest.company.timezone)
    board = board or Board()
    tip = tips.pick(user, digest.company, now=now)
    preview = getattr(mail, "preview", None)
    if preview is not None:
        subject, html = preview(digest, user, period, board=board, tip=tip,
                                notice=digest.slowdown_notice)
    else:
        item = mail.build(digest, user, period, board=board, tip=tip,
                          notice=digest.slowdown_notice, manual=False)
        subject, html = item["subject"], item["html"]
    return subject, html, period


def _chosen_user(request, digest: Digest):
    wanted = parse_id(request.GET.get("user", "")) or request.user.pk
    user = preview_users(request.user, digest).filter(pk=wanted).first()
    if user is None:
        if wanted != request.user.pk and not can_change(request.user, digest) and \
                User.objects.filter(pk=wanted, companies=digest.company_id).exists():
            raise PermissionDenied("Your roles let you preview your own digest only.")
        raise Http404("No such user in this digest's company.")
    return user


def _change_url(digest: Digest) -> str:
    return reverse("admin:digests_digest_change", args=[digest.pk])


@office_user_required
@require_GET
def preview(request, digest_id: int):
    digest = visible_digest(request.user, digest_id)
    user = _chosen_user(request, digest)
    subject, _html, period = render_digest(digest, user)
    shown = Board().kpis_for(digest.company, digest.kpis, user)
    recipient_ids = set(services.recipients(digest).values_list("pk", flat=True))
    return render(request, "digests/view_preview.html", {
        **admin.site.each_context(request), "title": f"Preview · {digest}",
        "digest": digest, "chosen": user, "subject": subject, "period": period,
        "users": preview_users(request.user, digest), "recipient_ids": recipient_ids,
        "shown": shown, "hidden_count": len(digest.kpis or []) - len(shown),
        "body_url": reverse("digests:preview_body", args=[digest.pk]) + f"?user={user.pk}",
        "change_url": _change_url(digest),
    })


@office_user_required
@require_GET
def preview_body(request, digest_id: int):
    """The email's HTML alone, for the preview's frame."""
    digest = visible_digest(request.user, digest_id)
    user = _chosen_user(request, digest)
    _subject, html, _period = render_digest(digest, user)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = BODY_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _errors(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@office_user_required
@require_http_methods(["GET", "POST"])
def send_now(request, digest_id: int):
    """POST to=me sends at once; to=all asks first (GET shows the confirmation)."""
    digest = visible_digest(request.user, digest_id)
    to_all = (request.POST.get("to") or request.GET.get("to")) == "all"
    if request.method == "GET":
        if not to_all:
            return HttpResponseRedirect(_change_url(digest))
        if not can_change(request.user, digest):
            raise PermissionDenied("Your roles do not allow you to change digests.")
        now = timezone.now()
        return render(request, "digests/view_send_confirm.html", {
            **admin.site.each_context(request), "title": f"Send {digest} now",
            "digest": digest, "count": services.recipients(digest).count(),
            "period": periods.last_complete(digest.periodicity, now, digest.company.timezone),
            "change_url": _change_url(digest)})
    try:
        outcome = sending.send_now(digest, actor=request.user, to_all=to_all)
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, _errors(exc))
        return HttpResponseRedirect(_change_url(digest))
    if outcome.sent:
        messages.success(request, f"Sent to {_plural(outcome.sent, 'recipient')}."
                         if to_all else "Sent to you: it is in the outbox.")
    elif not outcome.failed and not outcome.refused:
        messages.warning(request, "Nobody to send to: the digest has no subscribed "
                                  "recipients with an email address.")
    if outcome.refused:
        messages.error(request, f"Not sent to {_plural(len(outcome.refused), 'recipient')}: "
                                + "; ".join(outcome.refused[:10]))
    if outcome.failed:
        messages.error(request, f"{_plural(outcome.failed, 'email')} could not be built or "
                                "queued; the server log says why.")
    return HttpResponseRedirect(_change_url(digest))


@office_user_required
@require_POST
def set_active(request, digest_id: int):
    digest = visible_digest(request.user, digest_id)
    active = request.POST.get("active") == "1"
    try:
        services.set_active(digest, active, actor=request.user)
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"{digest} is {'active' if active else 'inactive'}.")
    return HttpResponseRedirect(_change_url(digest))


@office_user_required
@require_POST
def restore(request, digest_id: int):
    digest = visible_digest(request.user, digest_id)
    try:
        digest = services.restore_periodicity(digest, actor=request.user)
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"{digest} is sent {digest.get_periodicity_display().lower()} "
                                  "again.")
    return HttpResponseRedirect(_change_url(digest))
