"""The Caught mail pages: what the demo mail catcher received, newest first, and one mail with
its HTML in a sandboxed frame, its text and its headers.

Mail Managers and Administrators only (they configure the servers that send there). A caught
mail belongs to the company whose outbox sent it: a user sees their current company's, plus
the ones no company sent (a script pointed at the catcher), never another company's.
"""

from __future__ import annotations

import email.parser
import email.policy

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.views.decorators.http import require_GET

from mailroom.core.decorators import office_user_required
from mailroom.core.roles import Role
from mailroom.demo import services
from mailroom.demo.models import CaughtMail
from mailroom.lib.inbound import InboundError, Limits, parse_body, split_head

# the body frame loads nothing remote and runs nothing (as the email hub's)
BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
            "sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
PER_PAGE = 50


def may_read(user) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.MAIL_MANAGER))


def visible(user):
    if not may_read(user):
        raise PermissionDenied("Only Mail Managers and Administrators read caught mail.")
    company_id = getattr(user, "current_company_id", None)
    if user.is_superuser:
        return CaughtMail.objects.all()
    return CaughtMail.objects.filter(Q(company_id=company_id) | Q(company=None))


def _mail_for(request, pk: int) -> CaughtMail:
    mail = visible(request.user).filter(pk=pk).first()
    if mail is None:
        raise Http404("No such caught mail.")
    return mail


@office_user_required
@require_GET
def caught_list(request):
    mails = visible(request.user).select_related("company")
    page = Paginator(mails, PER_PAGE).get_page(request.GET.get("p"))
    return render(request, "demo/caught_list.html", {
        **admin.site.each_context(request),
        "title": "Caught mail",
        "page": page,
        "enabled": services.catcher_enabled(),
        "address": "{}:{}".format(*services.catcher_address()),
    })


def _parts(raw: bytes) -> tuple[list[tuple[str, str]], str, str, list, str]:
    """Headers (in order), text, html, attachments, and what could not be read."""
    head, _ = split_head(raw)
    headers = [(name, str(value)) for name, value in
               email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(
                   head + b"\r\n").items()]
    try:
        body = parse_body(raw, Limits(max_bytes=max(len(raw), 1)))
    except InboundError as exc:
        return headers, "", "", [], f"The body could not be read: {exc}"
    return headers, body.text, body.html, body.attachments, ""


@office_user_required
@require_GET
def caught_detail(request, pk: int):
    mail = _mail_for(request, pk)
    try:
        raw = services.raw_bytes(mail)
    except FileNotFoundError:
        raw = b""
    headers, text, html, attachments, problem = _parts(raw) if raw else (
        [], "", "", [], "The stored message is missing from the data directory.")
    return render(request, "demo/caught_detail.html", {
        **admin.site.each_context(request),
        "title": mail.subject or "(no subject)",
        "mail": mail,
        "headers": headers,
        "text": text,
        "has_html": bool(html),
        "attachments": attachments,
        "problem": problem,
    })


@office_user_required
@require_GET
def caught_body(request, pk: int):
    """The mail's HTML for the sandboxed iframe (or its text, escaped)."""
    mail = _mail_for(request, pk)
    try:
        _, text, html, _, _ = _parts(services.raw_bytes(mail))
    except FileNotFoundError:
        text = html = ""
    body = html or (f'<pre style="white-space:pre-wrap;font:14px/1.5 system-ui,sans-serif">'
                    f"{escape(text)}</pre>")
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = BODY_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@office_user_required
@require_GET
def caught_raw(request, pk: int):
    """The message as received, to open in a mail program."""
    mail = _mail_for(request, pk)
    try:
        raw = services.raw_bytes(mail)
    except FileNotFoundError as exc:
        raise Http404("The stored message is missing from the data directory.") from exc
    response = HttpResponse(raw, content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="caught-{mail.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
