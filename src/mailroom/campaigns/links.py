"""The absolute URLs a campaign mail carries for one recipient (all signed, see tokens.py).

The views behind them live in public_views.py (unsubscribe, preference centre) and
tracking_views.py (open pixel, click redirect), mounted at /l/ by public_urls.py: short
paths, because they sit in every link of every mail.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from mailroom.campaigns import tokens


def _absolute(path: str) -> str:
    return settings.BASE_URL.rstrip("/") + path


def unsubscribe_token(company_id: int, recipient_id: int) -> str:
    return tokens.make(tokens.UNSUBSCRIBE, company_id, recipient_id)


def track_token(company_id: int, recipient_id: int) -> str:
    return tokens.make(tokens.TRACK, company_id, recipient_id)


def preferences_url(token: str) -> str:
    """The preference centre (GET: a page; POST: the choices made there)."""
    return _absolute(reverse("campaigns_public:preferences", args=[token]))


def one_click_url(token: str) -> str:
    """RFC 8058's target: a POST with List-Unsubscribe=One-Click unsubscribes, no login."""
    return _absolute(reverse("campaigns_public:one_click", args=[token]))


def open_url(token: str) -> str:
    return _absolute(reverse("campaigns_public:open", args=[token]))


def click_base(token: str) -> str:
    """The click redirect without its link number: `<base>/<n>` opens link n."""
    return _absolute(reverse("campaigns_public:click", args=[token, 0]))[:-2]


def confirm_url(company_id: int, subscription_id: int) -> str:
    """A double opt-in list's confirmation link (GET: a page with a button; POST confirms)."""
    token = tokens.make(tokens.CONFIRM, company_id, subscription_id)
    return _absolute(reverse("campaigns_public:confirm", args=[token]))
