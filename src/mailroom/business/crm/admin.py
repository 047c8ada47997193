from django.contrib import admin

from mailroom.business.crm.models import Lead
from mailroom.chatter.admin_base import RecordAdmin, register_state_colours
from mailroom.core import navigation

register_state_colours({"qualified": "primary", "proposition": "warning", "won": "success",
                        "lost": "danger"})


@admin.register(Lead)
class LeadAdmin(RecordAdmin):
    list_display = ("name", "partner", "user", "state_chip", "expected_revenue", "created_at")
    list_filter = ("stage", "priority", "user")
    search_fields = ("name", "email_from", "partner__name")
    fieldsets = (
        (None, {"fields": ("name", "stage", "priority")}),
        ("Customer", {"fields": ("partner", "email_from", "phone")}),
        ("Pipeline", {"fields": ("user", "expected_revenue", "probability", "company")}),
        ("Notes", {"fields": ("description",)}),
    )
    state_field = "stage"


navigation.add_group("CRM", 35)
navigation.add_model("CRM", "Leads", "filter_alt", Lead)
