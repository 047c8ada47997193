"""Where inbound mail may go, in the back office: alias domains, aliases, allowed senders.

Every write goes through `routing.services` (permission check, full_clean, audit row). The
forms run the services' own validation first, so a bad value is an error on its field; a
refusal the service still raises at save time (a race on a unique name, a role) becomes a
red message and the form is shown again, never a traceback or a false "saved".
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from unfold.decorators import display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from mailroom.core import record_types
from mailroom.core.admin_actions import error_text
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.routing import services
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


def _service_errors(form: forms.ModelForm, check) -> None:
    """Run a service validator on the form's instance; its errors land on the fields."""
    if form.errors:
        return
    try:
        check(form.instance)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            known = {k: v for k, v in exc.error_dict.items() if k in form.fields}
            other = [e for k, v in exc.error_dict.items() if k not in form.fields for e in v]
            if known:
                form._update_errors(ValidationError(known))
            if other:
                form.add_error(None, other)
        else:
            form.add_error(None, exc)


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
def record_type_choices() -> list[tuple[str, str]]:
    return sorted(((t.key, t.label) for t in record_types.all_types()), key=lambda c: c[1])


def record_content_types():
    ids = [ContentType.objects.get_for_model(t.model, for_concrete_model=True).pk
           for t in record_types.all_types()]
    return ContentType.objects.filter(pk__in=ids)


def record_type_label(key: str) -> str:
    try:
        return record_types.get(key).label
    except LookupError:
        return key or "—"


class AliasForm(forms.ModelForm):
    record_type = forms.ChoiceField(label="Applies to", choices=record_type_choices,
                                    widget=UnfoldAdminSelectWidget,
                                    help_text="Mail to this alias creates records of this type.")

    class Meta:
        model = Alias
        fields = ("domain", "local_part", "company", "record_type", "defaults",
                  "thread_content_type", "thread_object_id", "parent_content_type",
                  "parent_object_id", "contact_policy", "allowlist_only", "bounce_message",
                  "active")
        labels = {"thread_content_type": "Force thread: record type",
                  "thread_object_id": "Force thread: record ID",
                  "parent_content_type": "Parent record: type",
                  "parent_object_id": "Parent record: ID"}
        help_texts = {
            "thread_object_id": "Every message is posted on this one record instead of "
                                "creating new ones. Leave both empty to create records.",
            "parent_object_id": "The record the alias belongs to (a project for its tasks@); "
                                "its followers count as followers for “who may write”.",
        }
        widgets = {"defaults": UnfoldAdminTextareaWidget(attrs={"rows": 3,
                                                                "spellcheck": "false"})}

    def clean_local_part(self) -> str:
        return (self.cleaned_data.get("local_part") or "").strip().lower()

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        types = record_content_types()
        for name in ("thread_content_type", "parent_content_type"):
            if name in self.fields:
                self.fields[name].queryset = types

    def _check_record(self, prefix: str) -> None:
        content_type = self.cleaned_data.get(f"{prefix}_content_type")
        object_id = self.cleaned_data.get(f"{prefix}_object_id")
        if not content_type or not object_id:
            return
        model = content_type.model_class()
        found = model._default_manager.filter(pk=object_id) if model else None
        if found is not None and hasattr(model, "company_id"):
            found = found.filter(company_id=self.instance.company_id)
        if found is None or not found.exists():
            self.add_error(f"{prefix}_object_id",
                           f"No {content_type.name} with ID {object_id} in this company.")

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        self._check_record("thread")
        self._check_record("parent")
        if bool(self.instance.parent_content_type_id) != bool(self.instance.parent_object_id):
            self.add_error("parent_object_id", "Name both the type and the record.")
        _service_errors(self, services.validate_alias)


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

        class ScopedForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=user, **kw)

        return ScopedForm

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
