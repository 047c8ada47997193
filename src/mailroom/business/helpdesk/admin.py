from django.contrib import admin

from mailroom.business.helpdesk import services
from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.admin_base import RecordAdmin, register_state_colours
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each

register_state_colours({"solved": "success"})


@admin.register(Ticket)
class TicketAdmin(RecordAdmin):
    list_display = ("ref", "name", "partner", "user", "priority", "state_chip", "created_at")
    list_display_links = ("ref", "name")
    list_filter = ("stage", "priority", "user")
    search_fields = ("ref", "name", "email", "partner__name", "description")
    autocomplete_fields = ("partner",)
    readonly_fields = ("ref", "closed_at")
    fieldsets = (
        (None, {"fields": ("ref", "name", "stage", "priority")}),
        ("Customer", {"fields": ("partner", "email")}),
        ("Assignment", {"fields": ("user", "company", "closed_at")}),
        ("Description", {"fields": ("description",)}),
    )
    state_field = "stage"
    actions = ["mark_solved", "mark_in_progress"]

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_ticket(obj, actor=request.user)

    @admin.action(description="Mark selected tickets solved", permissions=["change"])
    def mark_solved(self, request, queryset):
        apply_each(self, request, queryset, services.mark_solved, "Tickets solved")

    @admin.action(description="Mark selected tickets in progress", permissions=["change"])
    def mark_in_progress(self, request, queryset):
        apply_each(self, request, queryset, services.mark_in_progress, "Tickets in progress")


navigation.add_group("Helpdesk", 40)
navigation.add_model("Helpdesk", "Tickets", "support_agent", Ticket)
