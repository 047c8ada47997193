"""The header's company switcher: which companies a user may switch between."""

from __future__ import annotations

from django import template

from mailroom.core.models import Company

register = template.Library()


@register.simple_tag
def switchable_companies(user) -> list[Company]:
    """The user's companies by name; the operator (superuser) may work in any company."""
    if not getattr(user, "is_authenticated", False):
        return []
    qs = Company.objects.all() if user.is_superuser else user.companies.all()
    return list(qs.order_by("name").only("id", "name"))
