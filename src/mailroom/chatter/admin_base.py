"""The admin of a business record: its chatter beside the form, saves through the chatter
services, a state chip, and list actions that upper floors add (templating's "Send email…").

Business apps register the colours of their own states; this floor names none of them
beyond the generic ones.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models
from unfold.decorators import display

from mailroom.chatter.services import delete_record, save_record
from mailroom.core.admin_base import CompanyScopedAdmin

# state value -> unfold colour; apps add theirs with register_state_colours()
STATE_COLOURS: dict[str, str] = {
    "new": "info", "draft": "info", "open": "info", "todo": "info",
    "in_progress": "warning", "on_hold": "warning", "sent": "primary",
    "done": "success", "closed": "success",
    "cancel": "danger", "cancelled": "danger",
}
# (name, function(modeladmin, request, queryset), label) offered on every record list
RECORD_LIST_ACTIONS: list[tuple[str, Callable, str]] = []


def register_state_colours(colours: dict[str, str]) -> None:
    """`{"won": "success", "lost": "danger"}`: how a record type's states are coloured."""
    STATE_COLOURS.update(colours)


def register_record_list_action(name: str, function: Callable, label: str) -> None:
    """An action on every record list, e.g. templating's mass "Send email…"."""
    if all(existing != name for existing, _, _ in RECORD_LIST_ACTIONS):
        RECORD_LIST_ACTIONS.append((name, function, label))


class RecordAdmin(CompanyScopedAdmin):
    """A business record with the chatter panel beside its form."""

    change_form_template = "chatter/admin/record_change_form.html"
    state_field = "state"

    def save_model(self, request, obj, form, change):
        self.save_via_service(request, obj, form, change)

    def get_actions(self, request):
        """Every record list offers the registered record actions to office users."""
        found = super().get_actions(request)
        if request.user.is_staff and not getattr(self, "is_popup", False):
            for name, function, label in RECORD_LIST_ACTIONS:
                found[name] = (function, name, label)
        return found

    def delete_model(self, request, obj):
        delete_record(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            delete_record(obj, actor=request.user)

    def save_via_service(self, request, obj, form, change) -> None:
        """Apps with their own service override this (quotation totals, …)."""
        save_record(obj, actor=request.user)

    @display(description="State", label=STATE_COLOURS)
    def state_chip(self, obj: models.Model):
        """(value, text): unfold colours the chip by value and shows the readable text."""
        value = getattr(obj, self.state_field)
        text = getattr(obj, f"get_{self.state_field}_display")()
        return (value, text) if value in STATE_COLOURS else text
