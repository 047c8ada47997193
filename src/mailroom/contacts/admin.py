from django.contrib import admin

from mailroom.chatter.admin_base import RecordAdmin
from mailroom.contacts.models import Partner, PartnerTag
from mailroom.contacts.services import save_partner
from mailroom.core import navigation
from mailroom.core.admin_base import CompanyScopedAdmin


@admin.register(Partner)
class PartnerAdmin(RecordAdmin):
    list_display = ("name", "kind", "email", "phone", "city", "country", "is_blacklisted",
                    "bounce_count")
    list_filter = ("kind", "is_blacklisted", "tags", "country")
    search_fields = ("name", "email", "phone", "parent__name")
    filter_horizontal = ("tags",)
    fieldsets = (
        (None, {"fields": ("kind", "name", "parent", "email", "phone", "tags")}),
        ("Postal address", {"fields": ("street", "street2", "zip", "city", "state", "country")}),
        ("Preferences", {"fields": ("language", "timezone")}),
        ("Deliverability", {"fields": ("is_blacklisted", "bounce_count")}),
        ("Company", {"fields": ("company", "active")}),
    )
    readonly_fields = ("bounce_count",)

    def save_via_service(self, request, obj, form, change) -> None:
        save_partner(obj, actor=request.user)


@admin.register(PartnerTag)
class PartnerTagAdmin(CompanyScopedAdmin):
    list_display = ("name", "color", "company")
    search_fields = ("name",)


navigation.add_model("Contacts", "Contacts", "contacts", Partner)
navigation.add_model("Contacts", "Tags", "sell", PartnerTag)
