from django.contrib import admin
from django.db.models import Count

from mailroom.business.recruitment import services
from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.chatter.admin_base import RecordAdmin, register_state_colours
from mailroom.core import navigation
from mailroom.core.admin_actions import apply_each

register_state_colours({"screening": "primary", "interview": "warning",
                        "contract_proposal": "warning", "hired": "success", "refused": "danger"})


@admin.register(Applicant)
class ApplicantAdmin(RecordAdmin):
    list_display = ("partner_name", "job", "email", "user", "state_chip", "salary_expected",
                    "created_at")
    list_filter = ("stage", "job", "user")
    search_fields = ("partner_name", "email", "phone", "job__name", "partner__name")
    autocomplete_fields = ("partner", "job")
    list_select_related = ("job", "user")
    fieldsets = (
        (None, {"fields": ("partner_name", "job", "stage")}),
        ("Contact", {"fields": ("partner", "email", "phone")}),
        ("Process", {"fields": ("user", "salary_expected", "company")}),
        ("Notes", {"fields": ("description",)}),
    )
    state_field = "stage"
    actions = ["move_to_interview", "refuse"]

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_applicant(obj, actor=request.user)

    @admin.action(description="Move selected applicants to interview", permissions=["change"])
    def move_to_interview(self, request, queryset):
        apply_each(self, request, queryset, services.move_to_interview, "Moved to interview")

    @admin.action(description="Refuse selected applicants", permissions=["change"])
    def refuse(self, request, queryset):
        apply_each(self, request, queryset, services.refuse, "Applicants refused")


@admin.register(JobPosition)
class JobPositionAdmin(RecordAdmin):
    list_display = ("name", "user", "active", "applicant_count")
    list_filter = ("active", "user")
    search_fields = ("name", "description")
    fields = ("name", "user", "active", "company", "description")
    actions = ["close_positions"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(applicant_count=Count("applicants"))

    @admin.display(description="Applicants", ordering="applicant_count")
    def applicant_count(self, obj) -> int:
        return obj.applicant_count

    def save_via_service(self, request, obj, form, change) -> None:
        services.save_job_position(obj, actor=request.user)

    @admin.action(description="Close selected positions", permissions=["change"])
    def close_positions(self, request, queryset):
        apply_each(self, request, queryset, services.close_position, "Positions closed")


navigation.add_group("Recruitment", 45)
navigation.add_model("Recruitment", "Applicants", "person_search", Applicant)
navigation.add_model("Recruitment", "Job positions", "work", JobPosition)
