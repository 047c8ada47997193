"""Where a chatter row's record opens in the back office."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse


def record_admin_path(content_type: ContentType, object_id: int) -> str:
    """The record's change page ("" when its type has no admin page)."""
    try:
        return reverse(f"admin:{content_type.app_label}_{content_type.model}_change",
                       args=[object_id])
    except NoReverseMatch:
        return ""
