"""/l/u/<token>/…: unsubscribe and the preference centre, reached from a campaign mail without
signing in (the signed token names the recipient's trace, see tokens.py).

- POST /l/u/<token>/one-click — RFC 8058: a mail client's POST (`List-Unsubscribe=One-Click`,
  no cookie, no CSRF token: the signed token authenticates it) leaves the campaign's lists;
  answered with a short plain text. A GET there (some clients open it) shows the preference
  centre and changes nothing, so link scanners change nothing either.
- GET/POST /l/u/<token>/ — the preference centre: the address, the company, its lists (those
  the campaign was sent to and every public one) with a checkbox each; "Save my choices",
  "Unsubscribe from <the lists this mail came through>" and "Unsubscribe from all". A page
  form: CSRF-protected.

A forged or edited token is a 404 with a short plain message. The page speaks the mail's
language and wears the company's colours and logo; its stylesheet is inline (no CDN).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseNotFound
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from mailroom.campaigns import preferences as prefs
from mailroom.campaigns.models import CampaignRecipient
from mailroom.core.throttle import client_ip
from mailroom.lib.params import parse_id

NOT_FOUND = ("This unsubscribe link is not valid: it may have been cut or changed. "
             "Use the link from the email itself.")


def _not_found() -> HttpResponse:
    return HttpResponseNotFound(NOT_FOUND, content_type="text/plain; charset=utf-8")


def _language(trace: CampaignRecipient) -> str:
    locale = trace.lang or trace.campaign.lang or trace.campaign.company.language or "en"
    return locale.replace("_", "-").lower()


def _names(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def _page(request, trace: CampaignRecipient, token: str, *, done: str = "", problem: str = "",
          status: int = 200) -> HttpResponse:
    company = trace.campaign.company
    choices = prefs.choices(trace)
    response = render(request, "campaigns/public/preferences.html", {
        "trace": trace, "token": token, "company": company, "choices": choices,
        "logo_url": company.logo.url if company.logo else "", "done": done,
        "problem": problem, "lang": translation.get_language(),
        "sent_to": [c for c in choices if c.sent_to and c.subscribed],
        "colour": company.primary_color or "#1f6feb"}, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response


@csrf_exempt  # RFC 8058: the mail client's POST carries no CSRF token; the signed token does
@never_cache
@require_http_methods(["GET", "POST"])
def one_click(request, token: str):
    trace = prefs.read_link(token)
    if trace is None:
        return _not_found()
    with translation.override(_language(trace)):
        if request.method == "GET":
            return _page(request, trace, token)
        prefs.one_click(trace, ip=client_ip(request))
        return HttpResponse(_("You are unsubscribed: %(company)s will not send you this kind "
                              "of mailing again.") % {"company": trace.campaign.company.name},
                            content_type="text/plain; charset=utf-8")


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request, token: str):
    trace = prefs.read_link(token)
    if trace is None:
        return _not_found()
    with translation.override(_language(trace)):
        if request.method == "GET":
            return _page(request, trace, token)
        ip = client_ip(request)
        try:
            action = request.POST.get("action")
            if action == "leave":  # the lists this mail came through
                left = prefs.one_click(trace, ip=ip, via="preference centre")
                return _page(request, trace, token, done=_(
                    "Done: you are unsubscribed from %(lists)s.") % {"lists": _names(left)}
                    if left else _("You were not on these lists any more; nothing changed."))
            if action == "unsubscribe_all":
                prefs.unsubscribe_all(trace, ip=ip)
                return _page(request, trace, token, done=_(
                    "Done: you are unsubscribed from all mailings of %(company)s. Changed your "
                    "mind? Check a list below and save.") % {
                    "company": trace.campaign.company.name})
            wanted = {pk for pk in (parse_id(v) for v in request.POST.getlist("list"))
                      if pk is not None}
            joined, left = prefs.save_choices(trace, wanted, ip=ip)
        except ValidationError as exc:
            return _page(request, trace, token, problem=" ".join(exc.messages), status=400)
        parts = []
        if joined:
            parts.append(ngettext("You are subscribed to %(lists)s.",
                                  "You are subscribed to %(lists)s.", len(joined))
                         % {"lists": _names(joined)})
        if left:
            parts.append(ngettext("You are unsubscribed from %(lists)s.",
                                  "You are unsubscribed from %(lists)s.", len(left))
                         % {"lists": _names(left)})
        done = " ".join(parts) or _("Your choices are saved; nothing needed to change.")
        return _page(request, trace, token, done=_("Saved.") + " " + done)

