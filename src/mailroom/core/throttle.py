"""Login throttling (django-axes): a wrong password costs, and too many lock the door.

Failed back-office logins are counted per account and per client address; at
`MAILROOM_LOGIN_FAILURE_LIMIT` failures within the cool-off window that account, and that
address, are refused — with a page that says why and until when — until the window passes or
an Administrator unlocks them (Settings › Locked logins, or `mailroom axes_reset_username`).
Failed API keys are counted per client address in the same table, so one client hammering the
API with guessed keys is answered 429 without anyone's real key being locked.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

API_KEY_CREDENTIAL = "api key"  # the "username" API key failures are recorded under


class LoginThrottle(AxesStandaloneBackend):
    """Refuses a locked-out account or address before any password is checked.

    Only requests are throttled: authenticate() without one (the test client, a shell) is not
    an attack surface and would otherwise raise."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_parameters(request: HttpRequest, credentials: dict | None) -> list:
    """Logins lock per account and per address; API keys per address only (a guessed key
    prefix must not let anyone lock a real key out)."""
    if credentials and credentials.get("username") == API_KEY_CREDENTIAL:
        return ["ip_address"]
    return ["username", "ip_address"]


def api_key_locked(request: HttpRequest) -> bool:
    return AxesProxyHandler.is_locked(request, {"username": API_KEY_CREDENTIAL})


def api_key_failed(request: HttpRequest) -> None:
    user_login_failed.send(sender=__name__, credentials={"username": API_KEY_CREDENTIAL},
                           request=request)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or — behind a reverse proxy — the last address the
    proxy appended to the header named by MAILROOM_TRUSTED_PROXY_HEADER (a client can put
    anything before it, never after)."""
    header = getattr(settings, "MAILROOM_TRUSTED_PROXY_HEADER", "")
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR")


def _locked_until(request: HttpRequest, credentials: dict | None):
    """When the lockout that refused this request ends: its last counted failure plus the
    cool-off (failures while locked are not counted, so this does not move)."""
    username = (credentials or {}).get("username")
    ip = getattr(request, "axes_ip_address", None) or client_ip(request)
    last = AccessAttempt.objects.filter(
        Q(username=username) | Q(ip_address=ip),
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
    ).aggregate(last=Max("attempt_time"))["last"]
    return (last or timezone.now()) + settings.AXES_COOLOFF_TIME


def lockout_response(request: HttpRequest, original_response: HttpResponse | None,
                     credentials: dict | None) -> HttpResponse:
    """What a locked-out person sees: why, until when, and who can unlock it (429)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if request.path.startswith("/api/"):
        message = f"Too many failed attempts from your address: try again in {minutes} minutes."
        return JsonResponse({"detail": [{"field": None, "message": message}]}, status=429)
    context = {
        **admin.site.each_context(request),
        "reason": "Too many failed sign-in attempts.",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": minutes,
        "until": _locked_until(request, credentials),
        "login_url": reverse("admin:login"),
    }
    return render(request, "admin/locked_out.html", context, status=429)
