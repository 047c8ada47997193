"""The home page: what needs attention in the current company, and recent chatter activity."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse

from mailroom.chatter.models import Message
from mailroom.core import record_types


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
        try:
            link = reverse(f"admin:{content_type.app_label}_{content_type.model}_change",
                           args=[message.object_id])
        except NoReverseMatch:
            link = ""
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
    })
    return context
