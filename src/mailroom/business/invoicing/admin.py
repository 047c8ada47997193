from django.contrib import admin
from unfold.decorators import action, display

from mailroom.business.invoicing import services
from mailroom.business.invoicing.models import Invoice, InvoiceLine
from mailroom.business.sales.admin import QuotationAdmin
from mailroom.business.sales.document_admin import DocumentAdminMixin, LineInline
from mailroom.chatter.admin_base import RecordAdmin, register_state_colours
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each
from mailroom.letters.admin_buttons import SendByPostMixin
from mailroom.templating.admin import SendByEmailMixin

PAYMENT_COLOURS = {"not_paid": "warning", "partial": "info", "paid": "success"}

register_state_colours({"posted": "success", "not_paid": "warning", "partial": "warning",
                        "paid": "success"})


class InvoiceLineInline(LineInline):
    model = InvoiceLine


@admin.register(Invoice)
class InvoiceAdmin(SendByEmailMixin, SendByPostMixin, DocumentAdminMixin, RecordAdmin):
    list_display = ("ref", "partner", "invoice_date", "due_date", "total", "due",
                    "state_chip", "payment_chip")
    list_display_links = ("ref", "partner")
    list_filter = ("state", "payment_state", "user", "invoice_date")
    search_fields = ("ref", "partner__name", "partner__email", "quotation__ref", "note")
    list_select_related = ("partner",)
    autocomplete_fields = ("partner", "quotation")
    date_hierarchy = "invoice_date"
    inlines = [InvoiceLineInline]
    readonly_fields = ("ref", "state", "payment_state", "currency", "amount_untaxed",
                       "amount_tax", "amount_total", "amount_paid", "amount_residual")
    fieldsets = (
        (None, {"fields": ("ref", "partner", "state", "payment_state")}),
        ("Dates", {"fields": ("invoice_date", "due_date")}),
        ("Origin", {"fields": ("quotation", "user", "company")}),
        ("Amounts", {"fields": ("currency", "amount_untaxed", "amount_tax", "amount_total",
                                "amount_paid", "amount_residual")}),
        ("Terms and conditions", {"fields": ("note",)}),
    )
    actions = ["post", "pay_in_full", "cancel"]
    actions_submit_line = ["save_and_post"]
    actions_detail = ["send_by_email", "send_by_post", *DocumentAdminMixin.actions_detail]
    line_model = InvoiceLine
    set_lines_service = staticmethod(services.set_lines)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not obj.is_editable:
            fields = (*fields, "partner", "invoice_date", "quotation", "company")
        return fields

    @display(description="Total", ordering="amount_total")
    def total(self, obj) -> str:
        return f"{obj.amount_total:,.2f} {obj.currency}"

    @display(description="Amount due", ordering="amount_residual")
    def due(self, obj) -> str:
        return f"{obj.amount_residual:,.2f} {obj.currency}"

    @display(description="Payment", label=PAYMENT_COLOURS)
    def payment_chip(self, obj):
        """(value, text) like `state_chip`; drafts and cancelled invoices owe nothing yet."""
        if obj.state != Invoice.State.POSTED:
            return None
        return obj.payment_state, obj.get_payment_state_display()

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_invoice(obj, actor=request.user)

    @action(description="Save and post", permissions=["change"])
    def save_and_post(self, request, obj):
        self.run_service(request, services.post_invoice, obj, f"{obj} posted.")

    @admin.action(description="Post selected invoices", permissions=["change"])
    def post(self, request, queryset):
        apply_each(self, request, queryset, services.post_invoice, "Posted")

    @admin.action(description="Register full payment of selected invoices",
                  permissions=["change"])
    def pay_in_full(self, request, queryset):
        apply_each(self, request, queryset, services.pay_in_full, "Paid")

    @admin.action(description="Cancel selected invoices", permissions=["change"])
    def cancel(self, request, queryset):
        apply_each(self, request, queryset, services.cancel_invoice, "Cancelled")


navigation.add_group("Invoicing", 55)
navigation.add_model("Invoicing", "Invoices", "receipt_long", Invoice)


@admin.action(description="Create invoices for selected sales orders", permissions=["change"])
def create_invoices(modeladmin, request, queryset):
    apply_each(modeladmin, request, queryset, services.create_invoice_from_quotation,
               "Invoices created")


# invoicing builds on sales: it adds its action to the quotation list (sales knows nothing of it)
QuotationAdmin.actions = [*QuotationAdmin.actions, create_invoices]
