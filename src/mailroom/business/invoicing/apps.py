from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class InvoicingConfig(AppConfig):
    name = "mailroom.business.invoicing"
    label = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.invoicing.kpis import register_kpis
        from mailroom.business.invoicing.models import Invoice
        from mailroom.business.invoicing.services import mark_invoice_sent
        from mailroom.templating.actions import (
            MARK_DOCUMENT_SENT,
            register_action,
            register_mark_sent,
        )

        # Lines go through `invoicing.services.set_lines`; state and payments through
        # post/cancel/register_payment, so none of them is writable here.
        register(RecordType(
            key="invoicing.invoice", label="Invoice", label_plural="Invoices", model=Invoice,
            default_alias="", api_slug="invoices",
            template_fields=("ref", "state", "payment_state", "invoice_date", "due_date",
                             "currency", "amount_untaxed", "amount_tax", "amount_total",
                             "amount_paid", "amount_residual", "note", "quotation.ref",
                             "partner.name", "partner.email", "user.first_name",
                             "user.last_name", "user.email", "company.name",
                             "lines.description", "lines.quantity", "lines.price_unit",
                             "lines.discount", "lines.subtotal"),
            api_fields=("partner_id", "user_id", "invoice_date", "due_date", "quotation_id",
                        "note"),
        ))
        register_action("send_invoice", "Send invoice", "invoicing.invoice", MARK_DOCUMENT_SENT)
        register_action("invoice_reminder", "Payment reminder", "invoicing.invoice")
        register_mark_sent("invoicing.invoice", lambda invoice, mail: mark_invoice_sent(
            invoice, actor=None, when=mail.sent_at))
        register_kpis()
