from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class HelpdeskConfig(AppConfig):
    name = "mailroom.business.helpdesk"
    label = "helpdesk"
    verbose_name = "Helpdesk"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.helpdesk.kpis import register_kpis
        from mailroom.business.helpdesk.models import Ticket
        from mailroom.templating.actions import register_action

        register(RecordType(
            key="helpdesk.ticket", label="Ticket", label_plural="Tickets", model=Ticket,
            default_alias="support", api_slug="tickets",
            template_fields=("ref", "name", "stage", "priority", "email", "description",
                             "created_at", "closed_at", "partner.name", "partner.email",
                             "user.first_name", "user.last_name", "user.email", "company.name"),
            api_fields=("name", "description", "partner_id", "email", "user_id", "priority",
                        "stage"),
        ))
        register_action("acknowledge_ticket", "Acknowledge ticket", "helpdesk.ticket")
        register_kpis()
