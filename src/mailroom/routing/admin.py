"""Where inbound mail may go, in the back office: alias domains, aliases, allowed senders.

Every write goes through `routing.services` (permission check, full_clean, audit row). The
forms run the services' own validation first, so a bad value is an error on its field; a
refusal the service still raises at save time (a race on a unique name, a role) becomes a
red message and the form is shown again, never a traceback or a false "saved".
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.decorators import display

from mailroom.core.admin_actions import error_text
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.routing import services
from mailroom.routing.forms import AliasForm, record_type_label, search_records
from mailroom.routing.models import Alias, AliasDomain, AllowedSender

ALIAS_STATUS_COLOURS = {"valid": "success", "invalid": "danger", "not_tested": "warning"}


class ServiceSaveMixin:
    """save_model/delete_model call a service; a refusal at save time is a red message."""

    save_service = staticmethod(lambda obj, *, actor: obj)
    delete_service = staticmethod(services.delete)

    def save_model(self, request, obj, form, change):
        try:
            self.save_service(obj, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            obj._service_error = error_text(exc)
            self.message_user(request, f"Not saved: {obj._service_error}", messages.ERROR)
        else:
            if not change:
                self.after_create(request, obj)

    def after_create(self, request, obj) -> None:
        pass

    def save_related(self, request, form, formsets, change):
        if not getattr(form.instance, "_service_error", None):
            super().save_related(request, form, formsets, change)

    def log_addition(self, request, obj, message):
        if not getattr(obj, "_service_error", None):
            return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if not getattr(obj, "_service_error", None):
            return super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "_service_error", None):
            transaction.set_rollback(True)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(obj, "_service_error", None):
            transaction.set_rollback(True)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    def delete_model(self, request, obj):
        try:
            self.delete_service(obj, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, f"{obj} was not deleted: {error_text(exc)}",
                              messages.ERROR)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


# --------------------------------------------------------------------------- alias domains
class AliasDomainForm(forms.ModelForm):
    class Meta:
        model = AliasDomain
        fields = ("name", "company", "sequence", "bounce_alias", "catchall_alias",
                  "default_from", "accept_unknown", "allowlist_only")

    def clean_name(self) -> str:  # what the service does, before the model's validators
        return (self.cleaned_data.get("name") or "").strip().lower().rstrip(".")


@admin.register(AliasDomain)
class AliasDomainAdmin(ServiceSaveMixin, CompanyScopedAdmin):
    form = AliasDomainForm
    save_service = staticmethod(services.save_alias_domain)
    list_display = ("name", "bounce_email", "catchall_email", "default_from_email",
                    "accept_unknown", "allowlist_only", "alias_count")
    search_fields = ("name",)
    list_filter = ("accept_unknown", "allowlist_only")
    readonly_fields = ("bounce_email", "catchall_email", "default_from_email")
    actions = ["create_default_aliases"]
    fieldsets = (
        (None, {"fields": ("name", "company", "sequence")}),
        ("Special addresses", {"fields": (
            ("bounce_alias", "bounce_email"), ("catchall_alias", "catchall_email"),
            ("default_from", "default_from_email"))}),
        ("Reception", {"fields": ("accept_unknown", "allowlist_only")}),
    )

    def after_create(self, request, obj) -> None:
        created = services.ensure_default_aliases(obj, actor=request.user)
        if created:
            self.message_user(request, "Default aliases created: " + ", ".join(
                a.email for a in created) + ".", messages.SUCCESS)

    @display(description="Bounce address")
    def bounce_email(self, obj: AliasDomain) -> str:
        return obj.bounce_email if obj.pk else "—"

    @display(description="Catch-all (Reply-To) address")
    def catchall_email(self, obj: AliasDomain) -> str:
        return obj.catchall_email if obj.pk else "—"

    @display(description="Default From address")
    def default_from_email(self, obj: AliasDomain) -> str:
        return obj.default_from_email if obj.pk else "—"

    @display(description="Aliases")
    def alias_count(self, obj: AliasDomain) -> int:
        return obj.aliases.count()

    @admin.action(description="Create the default aliases", permissions=["change"])
    def create_default_aliases(self, request, queryset):
        made = []
        for domain in queryset:
            if not request.user.is_superuser and domain.company_id not in \
                    request.user.company_ids():
                continue
            made += services.ensure_default_aliases(domain, actor=request.user)
        if made:
            self.message_user(request, "Created: " + ", ".join(a.email for a in made) + ".",
                              messages.SUCCESS)
        else:
            self.message_user(request, "Every default alias already exists.", messages.INFO)


# --------------------------------------------------------------------------- aliases
@admin.register(Alias)
class AliasAdmin(ServiceSaveMixin, CompanyScopedAdmin):
    form = AliasForm
    save_service = staticmethod(services.save_alias)
    list_display = ("address", "applies_to", "contact_policy", "status_chip", "active")
    list_display_links = ("address",)
    list_filter = ("active", "status", "contact_policy", "domain")
    search_fields = ("local_part", "domain__name", "record_type")
    readonly_fields = ("status", "last_error")
    actions = ["test_selected"]
    fieldsets = (
        (None, {"fields": ("domain", "local_part", "company", "record_type", "active")}),
        ("New records", {"fields": ("defaults", ("thread_content_type", "thread_object_id"),
                                    ("parent_content_type", "parent_object_id"))}),
        ("Who may write", {"fields": ("contact_policy", "allowlist_only", "bounce_message")}),
        ("Status", {"fields": ("status", "last_error")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("domain")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        user = request.user
        urls = {"defaults": reverse("admin:routing_alias_defaults"),
                "records": reverse("admin:routing_alias_records")}

        class ScopedForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=user, urls=urls, **kw)

        return ScopedForm

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("defaults/", view(self.defaults_view), name="routing_alias_defaults"),
            path("records/", view(self.records_view), name="routing_alias_records"),
            *super().get_urls(),
        ]

    def defaults_view(self, request):
        """htmx: the default-value fields of the record type just chosen (GET, reads only)."""
        if request.method != "GET" or not (self.has_add_permission(request)
                                           or self.has_change_permission(request)):
            raise PermissionDenied
        form = self.get_form(request)()
        company = request.GET.get("company", "")
        company_id = int(company) if company.isdigit() and (
            request.user.is_superuser or int(company) in set(request.user.company_ids())) \
            else None
        form.configure_defaults(request.GET.get("record_type", ""), company_id,
                                reverse("admin:routing_alias_defaults"))
        return TemplateResponse(request, "routing/admin/alias_defaults_field.html",
                                {"field": form["defaults"]})

    def records_view(self, request):
        """The record pickers' search: records of one type in one of the user's companies."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        page = request.GET.get("page", "1")
        results, more = search_records(request.GET.get("type"), request.GET.get("company"),
                                       request.GET.get("term", ""), user=request.user,
                                       page=int(page) if page.isdigit() else 1)
        return JsonResponse({"results": results, "pagination": {"more": more}})

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is not None else self.fieldsets[:3]

    @display(description="Address", ordering="local_part")
    def address(self, obj: Alias) -> str:
        return obj.email

    @display(description="Applies to", ordering="record_type")
    def applies_to(self, obj: Alias) -> str:
        label = record_type_label(obj.record_type)
        return f"{label} (one thread)" if obj.forces_thread else label

    @display(description="Status", label=ALIAS_STATUS_COLOURS)
    def status_chip(self, obj: Alias):
        return obj.status, obj.get_status_display()

    @admin.action(description="Test: route a sample message to the alias",
                  permissions=["change"])
    def test_selected(self, request, queryset):
        for alias in queryset.select_related("domain", "company"):
            try:
                ok, verdict = services.run_alias_test(alias, actor=request.user)
            except PermissionDenied as exc:
                self.message_user(request, error_text(exc), messages.ERROR)
                return
            if ok:
                self.message_user(request, f"{alias.email}: valid — {verdict}",
                                  messages.SUCCESS)
            else:
                self.message_user(request, f"{alias.email}: invalid — {alias.last_error}",
                                  messages.ERROR)


# --------------------------------------------------------------------------- allowed senders
class AllowedSenderForm(forms.ModelForm):
    class Meta:
        model = AllowedSender
        fields = ("pattern", "company", "alias", "alias_domain", "note")
        labels = {"alias": "Only for this alias", "alias_domain": "Only for this domain"}
        help_texts = {"alias_domain": "Leave both empty to allow the sender for the whole "
                                      "company."}

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        sender = self.instance
        if sender.alias_id and sender.alias_domain_id:
            self.add_error("alias_domain", "Choose an alias or a domain, not both.")
            return
        pattern = (sender.pattern or "").strip().lower().lstrip("@")
        clash = AllowedSender.objects.filter(
            company_id=sender.company_id, pattern=pattern, alias_id=sender.alias_id,
            alias_domain_id=sender.alias_domain_id).exclude(pk=sender.pk)
        if not pattern or " " in pattern or pattern.count("@") > 1:
            self.add_error("pattern", "Enter an address (anna@partner.com) or a domain.")
        elif clash.exists():
            self.add_error("pattern", "This sender is already allowed here.")


@admin.register(AllowedSender)
class AllowedSenderAdmin(ServiceSaveMixin, CompanyScopedAdmin):
    form = AllowedSenderForm
    save_service = staticmethod(services.save_allowed_sender)
    list_display = ("pattern", "scope", "note", "created_at")
    search_fields = ("pattern", "note")
    fields = ("pattern", "company", "alias", "alias_domain", "note")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("alias__domain", "alias_domain")

    @display(description="Scope")
    def scope(self, obj: AllowedSender) -> str:
        if obj.alias_id:
            return format_html("Alias {}", obj.alias.email)
        if obj.alias_domain_id:
            return format_html("Domain {}", obj.alias_domain.name)
        return "Whole company"


# the sidebar entries of these screens are added by incoming/admin.py, in the group's order
