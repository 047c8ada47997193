"""The home page: what needs attention in the current company, and recent chatter activity.

Apps above the chatter add panels to it (the email state from `outgoing`, the mail catcher's
hint from `demo`) with `register_home_panel` in their `AppConfig.ready()`: a template and a
function `(request) -> dict | None` giving its context, None to show nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse

from mailroom.chatter.links import record_admin_path
from mailroom.chatter.models import Message
from mailroom.core import record_types


@dataclass(frozen=True)
class HomePanel:
    key: str
    template: str  # rendered with `panel` = what `context` returned
    context: Callable[..., dict | None]  # (request) -> dict, or None to hide the panel
    position: int = 50  # lower first; the record cards and the activity come after all


_PANELS: dict[str, HomePanel] = {}


def register_home_panel(panel: HomePanel) -> None:
    if _PANELS.get(panel.key, panel) != panel:
        raise ValueError(f"Home panel {panel.key!r} is registered twice.")
    _PANELS[panel.key] = panel


def _panels(request) -> list[dict]:
    shown = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.position, p.key)):
        context = panel.context(request)
        if context is not None:
            shown.append({"key": panel.key, "template": panel.template, "context": context})
    return shown


def _record_cards(user) -> list[dict]:
    cards = []
    for record_type in record_types.all_types():
        model = record_type.model
        meta = model._meta
        if not user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
            continue
        try:
            link = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        cards.append({
            "label": record_type.label_plural,
            "count": model.objects.for_current_company(user).count(),
            "link": link,
        })
    return cards


def _recent_activity(user, limit: int = 12) -> list[dict]:
    rows = []
    messages = (Message.objects.for_current_company(user)
                .select_related("content_type").prefetch_related("tracking", "record")[:limit])
    for message in messages:
        content_type: ContentType = message.content_type
        link = record_admin_path(content_type, message.object_id)
        record = message.record
        label = content_type.name.capitalize()
        rows.append({"message": message, "link": link,
                     "record_label": f"{label} {record}" if record else label})
    return rows


def callback(request, context: dict) -> dict:
    user = request.user
    context.update({
        "mailroom_cards": _record_cards(user),
        "mailroom_activity": _recent_activity(user),
        "mailroom_company": user.current_company,
        "mailroom_panels": _panels(request),
    })
    return context
