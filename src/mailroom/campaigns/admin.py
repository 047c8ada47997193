"""Email › Mailing lists, Subscriptions and Contact imports.

Lists are written through `campaigns.services` (audited); a list's page leads to the import
wizard and the CSV export (/campaigns/…). Subscriptions and imports are read-only screens:
people join lists through imports, forms and the API, and leave through unsubscribe, so the
admin offers "Unsubscribe" and nothing that could put someone back without their consent.
"""

from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from unfold.decorators import action, display

from mailroom.campaigns import (  # noqa: F401 - registers Campaigns and Segments
    campaign_admin,
    segment_admin,
    services,
)
from mailroom.campaigns import suppression as suppression_services
from mailroom.campaigns.models import ImportJob, MailingList, Subscription, Suppression
from mailroom.core.access import allowed
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.lib.params import parse_id

Status = Subscription.Status
Reason = Suppression.Reason
STATUS_COLOURS = {"subscribed": "success", "unconfirmed": "info", "unsubscribed": "warning",
                  "bounced": "danger", "complained": "danger"}
IMPORT_COLOURS = {"draft": "info", "queued": "info", "running": "primary", "done": "success",
                  "failed": "danger"}


def _pk(object_id) -> int:
    pk = parse_id(str(object_id))
    if pk is None:
        raise Http404("No such object.")
    return pk


def _count(status: str) -> Count:
    return Count("subscriptions", filter=Q(subscriptions__status=status))


@admin.register(MailingList)
class MailingListAdmin(CompanyScopedAdmin):
    list_display = ["name", "public", "double_opt_in", "active", "subscribed_count",
                    "unconfirmed_count", "unsubscribed_count", "bounced_count",
                    "complained_count"]
    list_filter = ["active", "public", "double_opt_in"]
    search_fields = ["name", "description"]
    fields = ["company", "name", "description", "public", "double_opt_in", "active",
              "counts"]
    readonly_fields = ["counts"]
    actions_detail = ["import_contacts", "export_subscriptions"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_subscribed=_count(Status.SUBSCRIBED), n_unconfirmed=_count(Status.UNCONFIRMED),
            n_unsubscribed=_count(Status.UNSUBSCRIBED), n_bounced=_count(Status.BOUNCED),
            n_complained=_count(Status.COMPLAINED))

    @display(description="Subscribed", ordering="n_subscribed")
    def subscribed_count(self, obj):
        return obj.n_subscribed

    @display(description="Unconfirmed", ordering="n_unconfirmed")
    def unconfirmed_count(self, obj):
        return obj.n_unconfirmed

    @display(description="Unsubscribed", ordering="n_unsubscribed")
    def unsubscribed_count(self, obj):
        return obj.n_unsubscribed

    @display(description="Bounced", ordering="n_bounced")
    def bounced_count(self, obj):
        return obj.n_bounced

    @display(description="Complained", ordering="n_complained")
    def complained_count(self, obj):
        return obj.n_complained

    @display(description="Subscriptions")
    def counts(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:campaigns_subscription_changelist")
        parts = [format_html('<a class="text-primary-600" href="{}?mailing_list__id__exact={}'
                             '&status__exact={}">{} {}</a>', url, obj.pk, status,
                             getattr(obj, f"n_{status}", 0), label.lower())
                 for status, label in Status.choices]
        return format_html(" · ".join(["{}"] * len(parts)), *parts)

    def save_model(self, request, obj, form, change):
        services.save_list(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_list(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for mailing_list in queryset:
            services.delete_list(mailing_list, actor=request.user)

    def has_import_permission(self, request, object_id=None):
        return allowed(request.user, "campaigns.add_importjob")

    def has_export_permission(self, request, object_id=None):
        return allowed(request.user, "campaigns.change_subscription")

    def _list(self, request, object_id) -> MailingList:
        found = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if found is None:
            raise Http404("No such mailing list.")
        return found

    @action(description="Import contacts", url_path="import", icon="upload_file",
            permissions=["import"])
    def import_contacts(self, request, object_id):
        found = self._list(request, object_id)
        return redirect(reverse("campaigns:import_upload", args=[found.pk]))

    @action(description="Export CSV", url_path="export", icon="download",
            permissions=["export"])
    def export_subscriptions(self, request, object_id):
        found = self._list(request, object_id)
        return redirect(reverse("campaigns:export_csv", args=[found.pk]))


def unsubscribe_selected(modeladmin, request, queryset):
    done = 0
    for subscription in queryset.select_related("mailing_list"):
        try:
            services.unsubscribe(subscription, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, str(exc))
            return
        done += 1
    messages.success(request, f"{done} subscription{'s' if done != 1 else ''} unsubscribed.")


unsubscribe_selected.short_description = "Unsubscribe the selected people"
unsubscribe_selected.allowed_permissions = ("change",)


@admin.register(Subscription)
class SubscriptionAdmin(CompanyScopedAdmin):
    list_display = ["email", "partner", "mailing_list", "status_chip", "source", "consent_at",
                    "updated_at"]
    list_filter = ["mailing_list", "status", "source"]
    search_fields = ["email", "partner__name"]
    list_select_related = ["partner", "mailing_list"]
    readonly_fields = ["mailing_list", "partner", "email", "status", "source", "consent_how",
                       "consent_at", "consent_ip", "created_at", "updated_at", "confirmed_at",
                       "unsubscribed_at"]
    fields = readonly_fields
    actions = [unsubscribe_selected]

    @display(description="Status", label=STATUS_COLOURS, ordering="status")
    def status_chip(self, obj: Subscription):
        return obj.status, obj.get_status_display()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # the form is read-only; the permission only unlocks the Unsubscribe action
        return obj is None and allowed(request.user, "campaigns.change_subscription")

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted subscription would forget an unsubscription


@admin.register(ImportJob)
class ImportJobAdmin(CompanyScopedAdmin):
    list_display = ["filename", "mailing_list", "state_chip", "progress", "created", "updated",
                    "bad", "created_by", "created_at"]
    list_filter = ["state", "mailing_list"]
    search_fields = ["filename"]
    list_select_related = ["mailing_list", "created_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if job is None:
            raise Http404("No such import.")
        return redirect(reverse("campaigns:import_job", args=[job.pk]))

    @display(description="State", label=IMPORT_COLOURS, ordering="state")
    def state_chip(self, obj: ImportJob):
        return obj.state, obj.get_state_display()

    @display(description="Progress")
    def progress(self, obj: ImportJob):
        return f"{obj.done} / {obj.total}"


# --- Email › Suppression list ----------------------------------------------------------------

SUPPRESSION_COLOURS = {"unsubscribed": "warning", "bounced": "danger", "complained": "danger",
                       "manual": "info", "import": "info"}


@admin.register(Suppression)
class SuppressionAdmin(CompanyScopedAdmin):
    """Read-only rows with their reason and date; adding, removing, importing and exporting
    go through `campaigns.suppression` (audited)."""

    list_display = ["email", "reason_chip", "note", "created_at", "created_by"]
    list_filter = ["reason"]
    search_fields = ["email", "note"]
    list_select_related = ["created_by"]
    fields = ["company", "email", "reason", "note"]
    actions_list = ["import_suppressions", "export_suppressions"]

    @display(description="Reason", label=SUPPRESSION_COLOURS, ordering="reason")
    def reason_chip(self, obj: Suppression):
        return obj.reason, obj.get_reason_display()

    def get_readonly_fields(self, request, obj=None):
        return ["company", "email", "reason", "note", "created_at", "created_by"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) or self.fields

    def has_change_permission(self, request, obj=None):
        return False  # a row is added or removed, never edited

    def has_delete_permission(self, request, obj=None):
        # removing is `unsuppress` (audited), a Mail Manager's job: not only Administrators'
        return allowed(request.user, "campaigns.delete_suppression")

    def save_model(self, request, obj, form, change):
        row, _ = suppression_services.suppress(obj.company, obj.email, obj.reason or Reason.MANUAL,
                                      actor=request.user, note=obj.note)
        obj.pk, obj.email = row.pk, row.email

    def delete_model(self, request, obj):
        suppression_services.unsuppress(obj.company, obj.email, actor=request.user)

    def delete_queryset(self, request, queryset):
        for row in queryset.select_related("company"):
            suppression_services.unsuppress(row.company, row.email, actor=request.user)

    def has_import_permission(self, request):
        return allowed(request.user, "campaigns.add_suppression")

    def _company(self, request):
        company = getattr(request.user, "current_company", None)
        if company is None:
            raise PermissionDenied("Choose a company first.")
        return company

    @action(description="Import CSV", url_path="import", icon="upload_file",
            permissions=["import"])
    def import_suppressions(self, request):
        company = self._company(request)
        result, errors = None, []
        if request.method == "POST":
            upload = request.FILES.get("file")
            try:
                if upload is None:
                    raise ValidationError("Choose a CSV file.")
                if upload.size > suppression_services.MAX_IMPORT_BYTES:
                    raise ValidationError("The file is larger than 20 MB; split it.")
                result = suppression_services.import_csv(company, upload.read(), actor=request.user,
                                                note=request.POST.get("note", "")[:500])
            except (ValidationError, PermissionDenied) as exc:
                errors = list(getattr(exc, "messages", [str(exc)]))
        return TemplateResponse(request, "campaigns/suppression_import.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Import into the suppression list of {company}", "result": result,
            "errors": errors, "back": reverse("admin:campaigns_suppression_changelist")})

    @action(description="Export CSV", url_path="export", icon="download",
            permissions=["view"])
    def export_suppressions(self, request):
        company = self._company(request)
        writer = csv.writer(_Echo())
        rows = suppression_services.export_rows(company, actor=request.user)

        def lines():
            yield "\ufeff" + writer.writerow(suppression_services.EXPORT_HEADER)
            for row in rows:
                yield writer.writerow(["'" + v if v[:1] in "=+-@\t\r" and v else v
                                       for v in row])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(
            True, f"suppression list {company} {timezone.localdate().isoformat()}.csv")
        response["Cache-Control"] = "private, no-store"
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value
