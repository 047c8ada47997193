from django.apps import AppConfig

from mailroom.core.record_types import RecordType, register


class RecruitmentConfig(AppConfig):
    name = "mailroom.business.recruitment"
    label = "recruitment"
    verbose_name = "Recruitment"

    def ready(self) -> None:
        # ready(): models cannot load before the app registry
        from mailroom.business.recruitment.kpis import register_kpis
        from mailroom.business.recruitment.models import Applicant
        from mailroom.templating.actions import register_action

        register(RecordType(
            key="recruitment.applicant", label="Applicant", label_plural="Applicants",
            model=Applicant, default_alias="jobs", api_slug="applicants",
            template_fields=("partner_name", "email", "phone", "stage", "salary_expected",
                             "description", "job.name", "partner.name", "partner.email",
                             "user.first_name", "user.last_name", "user.email",
                             "company.name"),
            api_fields=("partner_name", "email", "phone", "job_id", "partner_id", "user_id",
                        "stage", "salary_expected", "description"),
        ))
        register_action("interview_invitation", "Interview invitation", "recruitment.applicant")
        register_kpis()
