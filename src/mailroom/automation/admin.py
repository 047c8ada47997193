"""Automation rules in the back office: company scoped, saved through services so the form
shows exactly the refusals the services give (as red lines under the field). What a rule
does (its action) is chosen from `automation.actions`, filled in by the apps installed."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from unfold.decorators import display
from unfold.widgets import UnfoldAdminSelectWidget

from mailroom.automation import actions, services
from mailroom.automation.models import AutomationRule, AutomationRun
from mailroom.core import navigation, record_types
from mailroom.core.admin_actions import apply_each
from mailroom.core.admin_base import CompanyScopedAdmin


def _record_type_choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(rt.key, rt.label) for rt in record_types.all_types()]


def _field_choices(kind) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped by record type: "Tickets" → stage, priority."""
    groups: list = [("", "—")]
    for rt in record_types.all_types():
        names = sorted({f.name for f in kind(rt.model)})
        if names:
            groups.append((rt.label_plural, [(n, f"{n} ({rt.label.lower()})") for n in names]))
    return groups


def _value_choices() -> list:
    groups: list = [("", "—")]
    for rt in record_types.all_types():
        for field in services.state_fields(rt.model):
            groups.append((f"{rt.label} › {field.verbose_name}",
                           [(str(v), str(label)) for v, label in field.flatchoices]))
    return groups


def _template_help() -> str:
    """What the template is for, action by action: required for emails, a reminder page for
    letters (each action says so when it registers)."""
    parts = []
    for action in actions.all_actions():
        if action.template == "required":
            parts.append(f"{action.label}: required, it is what is sent.")
        elif action.template_help:
            parts.append(f"{action.label}: {action.template_help}")
    return " ".join(parts)


class AutomationRuleForm(forms.ModelForm):
    action = forms.ChoiceField(label="Action", choices=actions.choices,
                               widget=UnfoldAdminSelectWidget,
                               help_text="What the rule does when it fires.")
    record_type = forms.ChoiceField(label="Applies to", choices=_record_type_choices,
                                    widget=UnfoldAdminSelectWidget)
    state_field = forms.ChoiceField(required=False, choices=lambda: _field_choices(
        services.state_fields), widget=UnfoldAdminSelectWidget,
        help_text="For “enters a state”: the field that changes.")
    state_value = forms.ChoiceField(required=False, choices=_value_choices,
                                    widget=UnfoldAdminSelectWidget,
                                    help_text="For “enters a state”: the value it takes.")
    date_field = forms.ChoiceField(required=False, choices=lambda: _field_choices(
        services.date_fields), widget=UnfoldAdminSelectWidget,
        help_text="For dates: the date to count from.")

    class Meta:
        model = AutomationRule
        fields = ("name", "company", "record_type", "action", "trigger", "state_field",
                  "state_value", "date_field", "days", "when", "conditions", "template",
                  "active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "template" in self.fields:
            self.fields["template"].help_text = _template_help()

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            services.validate_rule(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


@admin.register(AutomationRule)
class AutomationRuleAdmin(CompanyScopedAdmin):
    form = AutomationRuleForm
    list_display = ("name", "record_type_label", "trigger_label", "action_label", "template",
                     "active", "last_sent", "error_chip")
    list_filter = ("action", "trigger", "active", "record_type")
    search_fields = ("name", "template__name")
    readonly_fields = ("last_run_at", "last_error", "last_error_at", "updated_at",
                       "updated_by")
    fieldsets = (
        (None, {"fields": ("name", "company", "record_type", "action", "template", "active")}),
        ("When", {"fields": ("trigger", ("state_field", "state_value"),
                             ("date_field", "days", "when"), "conditions"),
                  "description": "Automated emails carry Auto-Submitted: auto-generated; "
                                 "records created from automatic mail trigger no rule."}),
        ("Last run", {"fields": ("last_run_at", "last_error", "last_error_at", "updated_at",
                                 "updated_by")}),
    )
    actions = ["activate", "deactivate"]

    @display(description="Applies to")
    def record_type_label(self, obj: AutomationRule) -> str:
        return obj.record_type_label

    @display(description="Action")
    def action_label(self, obj: AutomationRule) -> str:
        return obj.action_label

    @display(description="When")
    def trigger_label(self, obj: AutomationRule) -> str:
        return obj.describe_trigger()

    @display(description="Last done")
    def last_sent(self, obj: AutomationRule):
        run = obj.runs.filter(error="").only("created_at").first()
        return run.created_at if run else "—"

    @display(description="Last error", label={"error": "danger"})
    def error_chip(self, obj: AutomationRule):
        return ("error", obj.last_error[:80]) if obj.last_error else "—"

    def save_model(self, request, obj, form, change):
        services.save_rule(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_rule(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            services.delete_rule(rule, actor=request.user)

    @admin.action(description="Activate selected rules", permissions=["change"])
    def activate(self, request, queryset):
        apply_each(self, request, queryset,
                   lambda rule, actor: services.set_active(rule, True, actor=actor),
                   "Rules activated")

    @admin.action(description="Deactivate selected rules", permissions=["change"])
    def deactivate(self, request, queryset):
        apply_each(self, request, queryset,
                   lambda rule, actor: services.set_active(rule, False, actor=actor),
                   "Rules deactivated")


@admin.register(AutomationRun)
class AutomationRunAdmin(CompanyScopedAdmin):
    """What each rule did (the mail, the letter), or why not: read only."""

    list_display = ("created_at", "rule", "content_type", "object_id", "event",
                    "outcome_link", "error")
    list_filter = ("rule",)
    search_fields = ("event", "error", "rule__name")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rule", "content_type",
                                                            "outcome_type")

    @display(description="Made")
    def outcome_link(self, obj: AutomationRun):
        """A link to what the action made: its admin page when there is one."""
        if obj.outcome_type_id is None or obj.outcome_id is None:
            return "—"
        model = obj.outcome_type.model_class()
        name = f"{model._meta.verbose_name} #{obj.outcome_id}" if model else "—"
        try:
            url = reverse(f"admin:{obj.outcome_type.app_label}_{obj.outcome_type.model}"
                          "_change", args=[obj.outcome_id])
        except NoReverseMatch:
            return name
        return format_html('<a href="{}">{}</a>', url, name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


navigation.add_model("Email", "Automated emails", "bolt", AutomationRule)
