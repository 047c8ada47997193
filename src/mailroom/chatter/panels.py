"""The record panels registry: boxes an upper floor adds to every record's chatter panel.

The chatter owns the panel beside each record form; an app that shows something about the
record there (activities, later others) registers a panel in its `AppConfig.ready()`:

    register_panel("activities", "activities:panel", position=10)

`url_name` is reversed with the record's (content type id, object id) and answers an HTML
fragment; the chatter panel loads it with htmx when it shows, so the chatter never imports
the app that fills it. Panels render above the attachments, lowest `position` first.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse


@dataclass(frozen=True)
class RecordPanel:
    key: str  # unique; the element id is "record-panel-<key>"
    url_name: str  # a URL name taking (content_type_id, object_id)
    position: int = 50


_PANELS: dict[str, RecordPanel] = {}


def register_panel(key: str, url_name: str, position: int = 50) -> RecordPanel:
    panel = RecordPanel(key, url_name, position)
    if _PANELS.get(key, panel) != panel:
        raise ValueError(f"Record panel {key!r} is registered twice.")
    _PANELS[key] = panel
    return panel


def record_panels() -> list[RecordPanel]:
    return sorted(_PANELS.values(), key=lambda p: (p.position, p.key))


def panel_urls(record: models.Model) -> list[tuple[str, str]]:
    """(key, url) of every registered panel for `record`."""
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    return [(p.key, reverse(p.url_name, args=[content_type.pk, record.pk]))
            for p in record_panels()]
