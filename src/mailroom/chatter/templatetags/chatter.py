"""Template helpers for the chatter panel."""

from __future__ import annotations

import re

from django import template
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from mailroom.chatter.inbox import inbox_count
from mailroom.lib.html import sanitize_html
from mailroom.lib.html_text import html_to_plain

register = template.Library()

BADGES = {"comment": "message", "note": "note", "system": "system", "email": "email"}


@register.simple_tag
def chatter_panel_url(record) -> str:
    """Where the record page loads its chatter panel from."""
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    return reverse("chatter:panel", args=[content_type.pk, record.pk])


@register.filter
def sanitized(value: str) -> str:
    """Bodies are sanitized when stored; sanitizing again on display keeps old or imported
    rows from ever reaching the page unsafe."""
    return mark_safe(sanitize_html(value or ""))  # noqa: S308 — nh3 output


@register.filter
def excerpt(html: str, length: int = 140) -> str:
    """One line of plain text from a stored HTML body, for feeds (the Home page's recent
    activity): entities decoded (no raw `&nbsp;`), table cells and blocks kept apart by
    lib.html_text instead of running into each other as striptags would."""
    text = " ".join(html_to_plain(html or "").split())
    return Truncator(text).chars(int(length))


_REMOTE_IMAGE = re.compile(r"""<img\b[^>]*\ssrc\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@register.filter
def has_remote_images(html: str) -> bool:
    """Does the body load images from elsewhere (what "Show remote images" would unblock)?"""
    return bool(_REMOTE_IMAGE.search(html or ""))


@register.filter
def initials(name: str) -> str:
    parts = [p for p in (name or "").replace("@", " ").split() if p[:1].isalnum()]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


@register.filter
def badge(message_type: str) -> str:
    return BADGES.get(message_type, message_type)


@register.simple_tag
def notified_summary(notifications) -> dict:
    """"Notified 3 · 1 not emailed" for the envelope marker under a message."""
    notifications = list(notifications)
    failed = [n for n in notifications if n.status in ("bounced", "exception", "cancelled")]
    text = f"Notified {len(notifications)}"
    if failed:
        text += f" · {len(failed)} not reached"
    return {"text": text, "failed": len(failed)}


@register.filter
def except_user(followers, user) -> list:
    """Followers other than the one standing for `user` (a message is never sent back to
    its author)."""
    user_id = getattr(user, "pk", None)
    return [f for f in followers if getattr(f.partner, "user_id", None) != user_id]


@register.inclusion_tag("chatter/partials/inbox_bell.html", takes_context=True)
def inbox_bell(context) -> dict:
    """The header's bell with what the signed-in user has to look at."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"count": inbox_count(user) if user is not None and user.is_authenticated else 0,
            "poll_seconds": poll_seconds()}


def poll_seconds() -> int:
    """How often the bell and the inbox page ask for news (MAILROOM_INBOX_POLL_SECONDS)."""
    return max(1, int(getattr(settings, "MAILROOM_INBOX_POLL_SECONDS", 20)))
