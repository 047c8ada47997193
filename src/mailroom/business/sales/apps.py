from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class SalesConfig(AppConfig):
    name = "mailroom.business.sales"
    label = "sales"
    verbose_name = "Sales"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.sales.kpis import register_kpis
        from mailroom.business.sales.models import Quotation
        from mailroom.business.sales.services import mark_quotation_sent
        from mailroom.templating.actions import (
            MARK_DOCUMENT_SENT,
            register_action,
            register_mark_sent,
        )

        # Lines go through `sales.services.set_lines`; state through confirm/cancel services.
        register(RecordType(
            key="sales.quotation", label="Quotation", label_plural="Quotations",
            model=Quotation, default_alias="", api_slug="quotations",
            template_fields=("ref", "state", "date", "validity_date", "currency",
                             "amount_untaxed", "amount_tax", "amount_total", "note",
                             "partner.name", "partner.email", "user.first_name",
                             "user.last_name", "user.email", "company.name",
                             "lines.description", "lines.quantity", "lines.price_unit",
                             "lines.discount", "lines.subtotal"),
            api_fields=("partner_id", "user_id", "date", "validity_date", "note"),
        ))
        register_action("send_quotation", "Send quotation", "sales.quotation",
                        MARK_DOCUMENT_SENT)

        def quotation_delivered(quotation, mail) -> None:
            if quotation.state in (Quotation.State.DRAFT, Quotation.State.SENT):
                mark_quotation_sent(quotation, actor=None)

        register_mark_sent("sales.quotation", quotation_delivered)
        register_kpis()
