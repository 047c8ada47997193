"""Back-office middleware: refuse NUL bytes; keep "last seen" current.

RefuseNulBytes: refuse NUL bytes in the back office's URLs and form fields with a 400.

No back-office parameter may hold one, and PostgreSQL refuses them in text columns: a list
filter such as `?state__exact=%00` reached the database and answered 500. Uploaded files
are not looked at (they are bytes); the API refuses NULs field by field in its own shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.utils import timezone

API_PREFIX = "/api/"


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path_info:
        return True
    sources = [request.GET]
    if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.POST)
    return any("\x00" in key or any("\x00" in value for value in source.getlist(key))
               for source in sources for key in source)


class RefuseNulBytes:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path_info.startswith(API_PREFIX) and _has_nul(request):
            return HttpResponseBadRequest("A parameter holds a NUL byte.")
        return self.get_response(request)


LAST_SEEN_EVERY = timedelta(minutes=10)


class TouchLastSeen:
    """Keep `User.last_seen_at` current: a signed-in session counts as using Mailroom even
    without a new login (digests slow down only for people who really stay away). One UPDATE
    per user every LAST_SEEN_EVERY, not one per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.pk:
            now = timezone.now()
            seen = getattr(user, "last_seen_at", None)
            if seen is None or now - seen >= LAST_SEEN_EVERY:
                # request.user is a SimpleLazyObject: type(user) is not the model
                user._meta.model.objects.filter(pk=user.pk).update(last_seen_at=now)
                user.last_seen_at = now
        return response
