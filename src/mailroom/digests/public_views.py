"""The pages behind the signed links of a digest email (no login: the token is the key).

- /digests/unsubscribe/<token>/: GET asks (changes nothing, so link scanners change
  nothing); POST unsubscribes — the page's button or a mail client's RFC 8058 one-click POST
  ("List-Unsubscribe=One-Click", no CSRF token: the signed token authenticates it). The
  result page offers to re-subscribe (POST action=subscribe).
- /digests/restore/<token>/: GET asks, POST puts the digest back to the periodicity people
  chose before Mailroom slowed it down.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from mailroom.digests import unsubscribe as links


def _page(request, context: dict, status: int = 200):
    return render(request, "digests/public_link.html", {
        **admin.site.each_context(request), "title": context.get("heading", "Digest"),
        **context}, status=status)


def _problem(request, message: str, status: int = 400):
    return _page(request, {"heading": "Digest", "problem": message}, status=status)


@csrf_exempt  # the signed token authenticates the POST; RFC 8058 clients send no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        link = links.read_unsubscribe(token)
    except links.LinkError as exc:
        return _problem(request, str(exc))
    context = {"heading": "Unsubscribe", "digest": link.digest, "company": link.digest.company,
               "who": link.user}
    if request.method == "GET":
        return _page(request, {**context, "subscribed": links.is_subscribed(link),
                               "step": "ask"})
    subscribe = request.POST.get("action") == "subscribe"
    try:
        if subscribe:
            links.resubscribe(link)
        else:
            links.unsubscribe(link)
    except PermissionDenied:
        return _problem(request, "This link no longer works: your account is no longer part "
                                 "of the company that sends this digest.", status=410)
    return _page(request, {**context, "step": "subscribed" if subscribe else "unsubscribed"})


@require_http_methods(["GET", "POST"])
def restore(request, token: str):
    try:
        link = links.read_restore(token)
    except links.LinkError as exc:
        return _problem(request, str(exc))
    digest = link.digest
    context = {"heading": "Digest frequency", "digest": digest, "company": digest.company,
               "who": link.user, "restore": True}
    if request.method == "GET":
        return _page(request, {**context, "step": "ask" if digest.slowed_from else "unchanged",
                               "chosen": digest.get_slowed_from_display().lower()
                               if digest.slowed_from else "",
                               "now": digest.get_periodicity_display().lower()})
    was_slowed = bool(digest.slowed_from)
    try:
        digest = links.restore(link)
    except links.LinkError as exc:
        return _problem(request, str(exc), status=410)
    return _page(request, {**context, "digest": digest,
                           "step": "restored" if was_slowed else "unchanged",
                           "now": digest.get_periodicity_display().lower()})
