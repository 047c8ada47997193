"""`{% record_panels record %}`: the registered record panels (chatter/panels.py), each
loaded by htmx into its own box of the chatter panel."""

from __future__ import annotations

from django import template

from mailroom.chatter.panels import panel_urls

register = template.Library()


@register.inclusion_tag("chatter/partials/record_panels.html")
def record_panels(record) -> dict:
    return {"panels": panel_urls(record)}
