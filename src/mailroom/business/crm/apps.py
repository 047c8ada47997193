from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class CrmConfig(AppConfig):
    name = "mailroom.business.crm"
    label = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.crm.kpis import register_kpis
        from mailroom.business.crm.models import Lead
        from mailroom.templating.actions import register_action

        register(RecordType(
            key="crm.lead", label="Lead", label_plural="Leads", model=Lead,
            default_alias="sales", api_slug="leads",
            template_fields=("name", "stage", "expected_revenue", "probability", "email_from",
                             "phone", "description", "partner.name", "partner.email",
                             "user.first_name", "user.last_name", "user.email",
                             "company.name"),
            api_fields=("name", "partner_id", "user_id", "stage", "email_from", "phone",
                        "expected_revenue", "probability", "priority", "description"),
        ))
        register_action("lead_followup", "Lead follow-up", "crm.lead")
        register_kpis()
