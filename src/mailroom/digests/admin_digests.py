"""Digests in the back office: the list (next run in the company's time zone, recipients,
KPIs, active and slowed-down chips), the form (recipients of the company, KPIs grouped by
app) with the digest's chatter beside it, and the actions of the change page (preview, send
now, activate) — those live in views.py and post to the services.

Every write goes through `digests.services`: `save_related` saves the digest with its
recipients in one `save_digest` call, never `obj.save()`.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from unfold.decorators import display

from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.digests import services
from mailroom.digests.forms import DigestForm
from mailroom.digests.models import Digest


def local_next_run(digest: Digest) -> str:
    """"Mon 7 Dec, 08:00" in the digest company's time zone; "—" when it does not run."""
    if digest.next_run_at is None or not digest.active:
        return "—"
    tz = ZoneInfo(digest.company.timezone or "UTC")
    moment = digest.next_run_at.astimezone(tz)
    return f"{moment:%a} {moment.day} {moment:%b}, {moment:%H:%M}"


@admin.register(Digest)
class DigestAdmin(CompanyScopedAdmin):
    form = DigestForm
    change_form_template = "digests/admin_change_form.html"
    change_form_outer_before_template = "digests/admin_actions.html"
    list_display = ("name", "periodicity_label", "next_run", "recipient_count", "kpi_count",
                    "active_chip", "slowed_chip")
    list_filter = ("active", "periodicity")
    list_filter_submit = True
    search_fields = ("name",)
    actions = ("activate_selected", "deactivate_selected")
    readonly_fields = ("next_run",)
    fieldsets = (
        (None, {"fields": ("name", "active")}),
        ("When", {"fields": ("periodicity", "send_time", "next_run")}),
        ("Recipients", {"fields": ("recipients",)}),
        ("KPIs", {"fields": ("kpis",)}),
    )

    # --- list ---------------------------------------------------------------------------------

    def get_queryset(self, request):
        return (super().get_queryset(request).select_related("company")
                .annotate(recipient_total=Count(
                    "subscriptions", distinct=True,
                    filter=Q(subscriptions__subscribed=True,
                             subscriptions__user__is_active=True))))

    @display(description="Periodicity", ordering="periodicity")
    def periodicity_label(self, obj: Digest) -> str:
        return obj.get_periodicity_display()

    @display(description="Next run", ordering="next_run_at")
    def next_run(self, obj: Digest) -> str:
        if obj is None or obj.pk is None:
            return "Computed when you save, from the periodicity and the send time."
        return local_next_run(obj)

    @display(description="Recipients", ordering="recipient_total")
    def recipient_count(self, obj: Digest) -> int:
        return obj.recipient_total

    @display(description="KPIs")
    def kpi_count(self, obj: Digest) -> int:
        return len(obj.kpis or [])

    @display(description="Active", ordering="active",
             label={"active": "success", "inactive": "info"})
    def active_chip(self, obj: Digest):
        return ("active", "Active") if obj.active else ("inactive", "Inactive")

    @display(description="Slowed down", label={"slowed": "warning"})
    def slowed_chip(self, obj: Digest):
        if not obj.slowed_from:
            return ""
        return "slowed", f"slowed to {obj.get_periodicity_display().lower()}"

    # --- form ---------------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        company = obj.company if obj is not None else request.user.current_company

        class CompanyDigestForm(form):
            def __init__(self, *args, **kw):
                kw.setdefault("company", company)
                super().__init__(*args, **kw)

        return CompanyDigestForm

    def has_add_permission(self, request):
        return request.user.current_company_id is not None and super().has_add_permission(
            request)

    def save_model(self, request, obj, form, change):
        """Nothing yet: save_related saves the digest with its recipients at once."""

    def save_related(self, request, form, formsets, change):
        services.save_digest(form.instance, actor=request.user,
                             recipients=list(form.cleaned_data.get("recipients") or []))

    def delete_model(self, request, obj):
        services.delete_digest(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for digest in queryset:
            services.delete_digest(digest, actor=request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        digest = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if digest is not None:
            extra["digest_recipients"] = services.recipients(digest).count()
            extra["can_change_digest"] = self.has_change_permission(request, digest)
        return super().change_view(request, object_id, form_url, extra)

    # --- list actions -------------------------------------------------------------------------

    def _set_active(self, request, queryset, active: bool) -> None:
        count = 0
        for digest in queryset:
            try:
                services.set_active(digest, active, actor=request.user)
                count += 1
            except (PermissionDenied, ValidationError) as exc:
                lines = getattr(exc, "messages", [str(exc)])
                messages.error(request, f"{digest}: {' '.join(lines)}")
        if count:
            word = "activated" if active else "deactivated"
            messages.success(request, f"{count} digest{'s' if count != 1 else ''} {word}.")

    @admin.action(description="Activate", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        self._set_active(request, queryset, False)
