from django.contrib import admin
from unfold.decorators import action, display

from mailroom.business.sales import services
from mailroom.business.sales.document_admin import DocumentAdminMixin, LineInline
from mailroom.business.sales.models import Quotation, QuotationLine, Tax
from mailroom.chatter.admin_base import RecordAdmin, register_state_colours
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.roles import Role
from mailroom.letters.admin_buttons import SendByPostMixin
from mailroom.templating.admin import SendByEmailMixin

register_state_colours({"sale": "success"})


class QuotationLineInline(LineInline):
    model = QuotationLine


@admin.register(Quotation)
class QuotationAdmin(SendByEmailMixin, SendByPostMixin, DocumentAdminMixin, RecordAdmin):
    list_display = ("ref", "partner", "user", "date", "validity_date", "total", "state_chip")
    list_display_links = ("ref", "partner")
    list_filter = ("state", "user", "date")
    search_fields = ("ref", "partner__name", "partner__email", "note")
    list_select_related = ("partner", "user")
    autocomplete_fields = ("partner",)
    date_hierarchy = "date"
    inlines = [QuotationLineInline]
    readonly_fields = ("ref", "state", "currency", "amount_untaxed", "amount_tax",
                       "amount_total")
    fieldsets = (
        (None, {"fields": ("ref", "partner", "state")}),
        ("Dates", {"fields": ("date", "validity_date")}),
        ("Sales", {"fields": ("user", "company")}),
        ("Amounts", {"fields": ("currency", "amount_untaxed", "amount_tax", "amount_total")}),
        ("Terms and conditions", {"fields": ("note",)}),
    )
    actions = ["confirm", "mark_sent", "cancel"]  # invoicing adds "Create invoices"
    actions_submit_line = ["save_and_confirm"]
    actions_detail = ["send_by_email", "send_by_post", *DocumentAdminMixin.actions_detail]
    line_model = QuotationLine
    set_lines_service = staticmethod(services.set_lines)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not obj.is_editable:
            fields = (*fields, "partner", "date", "company")
        return fields

    @display(description="Total", ordering="amount_total")
    def total(self, obj) -> str:
        return f"{obj.amount_total:,.2f} {obj.currency}"

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_quotation(obj, actor=request.user)

    @action(description="Save and confirm", permissions=["change"])
    def save_and_confirm(self, request, obj):
        self.run_service(request, services.confirm_quotation, obj, f"{obj} confirmed.")

    @admin.action(description="Confirm selected quotations", permissions=["change"])
    def confirm(self, request, queryset):
        apply_each(self, request, queryset, services.confirm_quotation, "Confirmed")

    @admin.action(description="Mark selected quotations as sent", permissions=["change"])
    def mark_sent(self, request, queryset):
        apply_each(self, request, queryset, services.mark_quotation_sent, "Marked as sent")

    @admin.action(description="Cancel selected quotations", permissions=["change"])
    def cancel(self, request, queryset):
        apply_each(self, request, queryset, services.cancel_quotation, "Cancelled")


@admin.register(Tax)
class TaxAdmin(CompanyScopedAdmin):
    list_display = ("name", "percent", "active", "company")
    list_filter = ("active",)
    search_fields = ("name",)
    fields = ("name", "percent", "active", "company")

    def has_add_permission(self, request):
        return request.user.has_role(Role.ADMINISTRATOR) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return request.user.has_role(Role.ADMINISTRATOR) and super().has_change_permission(
            request, obj)

    def save_model(self, request, obj, form, change):
        services.save_tax(obj, actor=request.user)


navigation.add_group("Sales", 30)
navigation.add_model("Sales", "Quotations", "request_quote", Quotation)
navigation.add_model("Sales", "Taxes", "percent", Tax)
