"""Digest tips: the list with each tip's numbers (shown, clicked, useful yes/no and %), the form
with translations, roles and record types as checkboxes, and "Send as notification now".

Who may do what (kept simple):
- Everyone with the tip view permission sees the tips of their current company and the ones
  Mailroom ships (no company), with their numbers.
- A new tip belongs to the user's current company. Mail Managers and Administrators change
  and delete their company's tips.
- The tips Mailroom ships are shown in every company: only Administrators change them
  (switching one off switches it off for every company of the installation) and nobody
  deletes them here (an upgrade would bring them back; switch them off instead).

Writes go through `tip_services`: the form checks each description with the service's own
validation (a refused placeholder is a red line under the field), then `save_related` saves
the tip with its translations in one `save_tip` call.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse
from unfold.admin import StackedInline
from unfold.decorators import display

from mailroom.activities.mail import wants_email
from mailroom.core import record_types
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.roles import Role
from mailroom.digests import tip_services
from mailroom.digests.models import Tip, TipTranslation

_CHECKBOXES = forms.CheckboxSelectMultiple


def role_choices() -> list[tuple[str, str]]:
    return [(r.value, r.value) for r in Role]


def record_type_choices() -> list[tuple[str, str]]:
    return sorted(((t.key, t.label_plural.capitalize()) for t in record_types.all_types()),
                  key=lambda c: c[1])


class TipForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        choices=role_choices, required=False, widget=_CHECKBOXES,
        help_text="Who gets this tip; none ticked: every user. Administrators hold every "
                  "role.")
    record_types = forms.MultipleChoiceField(
        choices=record_type_choices, required=False, widget=_CHECKBOXES,
        help_text="Only users who may see all the ticked record types get the tip.")

    class Meta:
        model = Tip
        fields = ("title", "body", "sequence", "active", "roles", "record_types")
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}

    def clean_body(self):
        body = self.cleaned_data.get("body", "")
        problems = tip_services.validate_body(body)
        if problems:
            raise ValidationError(problems)
        return body


class TranslationForm(forms.ModelForm):
    class Meta:
        model = TipTranslation
        fields = ("language", "title", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 6})}

    def clean_body(self):
        body = self.cleaned_data.get("body", "")
        problems = tip_services.validate_body(body)
        if problems:
            raise ValidationError(problems)
        return body


class TranslationFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", {})
            language = data.get("language")
            if not language or data.get("DELETE"):
                continue
            if language in seen:
                form.add_error("language", "There is already a translation in this language.")
            seen.add(language)


class TranslationInline(StackedInline):
    model = TipTranslation
    form = TranslationForm
    formset = TranslationFormSet
    extra = 0
    tab = True
    verbose_name_plural = "Translations"


def _percent(yes: int, no: int) -> str:
    total = yes + no
    return f"{round(100 * yes / total)} %" if total else "—"


@admin.register(Tip)
class TipAdmin(CompanyScopedAdmin):
    form = TipForm
    inlines = [TranslationInline]
    list_display = ("title", "sequence", "roles_label", "owner", "active", "shown_count",
                    "click_count", "useful_yes", "useful_no", "useful_percent")
    list_filter = ("active",)
    search_fields = ("title", "body")
    ordering = ("sequence", "id")
    actions = ["send_as_notification"]
    readonly_fields = ("owner", "shown_count", "click_count", "useful_yes", "useful_no",
                       "useful_percent")
    fieldsets = (
        (None, {"fields": ("title", "body", "sequence", "active")}),
        ("Who gets it", {"fields": ("roles", "record_types")}),
        ("Numbers", {"fields": ("owner", "shown_count", "click_count", "useful_yes",
                                "useful_no", "useful_percent")}),
    )

    # --- scope and permissions ----------------------------------------------------------------

    def get_queryset(self, request):
        """The current company's tips and Mailroom's on the list; any of the user's companies'
        (and Mailroom's) behind a link."""
        user = request.user
        qs = Tip.objects.all()
        match = getattr(request, "resolver_match", None)
        if match and match.url_name and match.url_name.endswith("_changelist"):
            return qs.for_company(user.current_company_id)
        if user.is_superuser:
            return qs
        return qs.filter(Q(company__isnull=True) | Q(company__in=user.company_ids()))

    def has_change_permission(self, request, obj=None):
        if obj is not None and not tip_services.can_change(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.company_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def has_send_permission(self, request):
        return request.user.has_perm("digests.change_tip")

    # --- list ---------------------------------------------------------------------------------

    @display(description="Roles")
    def roles_label(self, obj):
        return ", ".join(obj.roles) if obj.roles else "Everyone"

    @display(description="Company", ordering="company__name")
    def owner(self, obj):
        return obj.company.name if obj.company_id else "Mailroom (every company)"

    @display(description="Useful %")
    def useful_percent(self, obj):
        return _percent(obj.useful_yes, obj.useful_no)

    def get_list_select_related(self, request):
        return ("company",)

    # --- saving through the service -------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        """Nothing yet: save_related saves the tip with its translations at once."""
        if not change:
            obj.company = request.user.current_company

    def save_related(self, request, form, formsets, change):
        tip = form.instance
        translations = None
        for formset in formsets:
            if formset.model is TipTranslation:
                translations = [
                    TipTranslation(language=f.cleaned_data["language"],
                                   title=f.cleaned_data.get("title", ""),
                                   body=f.cleaned_data.get("body", ""))
                    for f in formset.forms
                    if f.cleaned_data.get("language") and not f.cleaned_data.get("DELETE")]
                formset.new_objects, formset.changed_objects = [], []
                formset.deleted_objects = []
        tip_services.save_tip(tip, actor=request.user, translations=translations)

    def delete_model(self, request, obj):
        tip_services.delete_tip(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for tip in queryset:
            tip_services.delete_tip(tip, actor=request.user)

    # --- send as notification -----------------------------------------------------------------

    @admin.action(description="Send as notification now", permissions=["send"])
    def send_as_notification(self, request, queryset):
        """First a confirmation page (who gets it, who does not and why); its POST sends."""
        company = request.user.current_company
        if company is None:
            messages.error(request, "Choose a company first.")
            return None
        tips = list(queryset)
        if request.POST.get("confirm") == "yes":
            for tip in tips:
                try:
                    result = tip_services.send_as_notification(tip, actor=request.user,
                                                               company=company)
                except (PermissionDenied, ValidationError) as exc:
                    lines = getattr(exc, "messages", [str(exc)])
                    messages.error(request, f"{tip}: {' '.join(lines)}")
                    continue
                note = (f" {result['skipped']} read their notifications in Mailroom only."
                        if result["skipped"] else "")
                messages.success(request, f"“{tip}” emailed to {result['sent']} "
                                          f"user{'s' if result['sent'] != 1 else ''}.{note}")
            return None
        rows = []
        for tip in tips:
            targets = tip_services.notification_targets(tip, company)
            emailed = [u for u in targets if wants_email(u)]
            rows.append({"tip": tip, "emailed": emailed,
                         "not_emailed": len(targets) - len(emailed)})
        return TemplateResponse(request, "digests/tip_send_confirm.html", {
            **self.admin_site.each_context(request), "title": "Send tips as notifications",
            "opts": self.model._meta, "rows": rows, "company": company,
            "selected": [t.pk for t in tips], "action_checkbox_name": ACTION_CHECKBOX_NAME})
