"""The email template screens: list, editor with translations and files, placeholder browser,
preview and test send.

Writes go through `templating.services`: the form checks the sources with the service's own
validation first (so a refused body is a red line under the field), then `save_related`
saves the template and its translations in one `save_template` call.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from unfold.admin import StackedInline, TabularInline
from unfold.decorators import action, display

from mailroom.contacts.models import Partner
from mailroom.core import navigation, record_types
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.lib.params import parse_id
from mailroom.templating import actions, services
from mailroom.templating.context import placeholders_for
from mailroom.templating.forms import (
    AttachmentUploadForm,
    RichTextarea,
    TemplateForm,
    TranslationFormSet,
)
from mailroom.templating.models import EmailTemplate, TemplateAttachment, TemplateTranslation
from mailroom.templating.services import (
    duplicate_template,
    is_template_editor,
    missing_languages,
    set_active,
)
from mailroom.templating.views import recent_records


class RecordTypeFilter(admin.SimpleListFilter):
    title = "applies to"
    parameter_name = "record_type"

    def lookups(self, request, model_admin):
        return sorted(((t.key, t.label) for t in record_types.all_types()), key=lambda c: c[1])

    def queryset(self, request, queryset):
        return queryset.filter(record_type=self.value()) if self.value() else queryset


class TranslationInline(StackedInline):
    model = TemplateTranslation
    formset = TranslationFormSet
    fields = ("lang", "subject", "body_html")
    extra = 0
    tab = True
    verbose_name_plural = "Translations"

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["widgets"] = {"body_html": RichTextarea()}
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"user": request.user})


class AttachmentInline(TabularInline):
    model = TemplateAttachment
    form = AttachmentUploadForm
    fields = ("name", "upload", "mimetype", "size")
    readonly_fields = ("mimetype", "size")
    extra = 0
    tab = True
    verbose_name_plural = "Files sent with every mail"


@admin.register(EmailTemplate)
class EmailTemplateAdmin(CompanyScopedAdmin):
    form = TemplateForm
    inlines = [TranslationInline, AttachmentInline]
    list_display = ("name", "applies_to", "lang", "default_for_label", "owner", "active")
    list_filter = ("active", RecordTypeFilter, "layout", "attach_document")
    list_filter_submit = True
    search_fields = ("name", "subject", "description")
    actions = ["duplicate_selected", "archive_selected", "unarchive_selected"]
    actions_detail = ["duplicate_detail"]
    change_form_outer_before_template = "templating/admin/placeholders.html"
    change_form_outer_after_template = "templating/admin/template_tools.html"
    fieldsets = (
        (None, {"fields": ("name", "company", "record_type", "description", "active")}),
        ("Content", {"fields": ("text_lang", "subject", "body_html")}),
        ("Recipients and sending", {"fields": (
            "email_from", "partner_to", "partners", "email_to", "email_cc", "reply_to", "lang",
            "scheduled_send", "server")}),
        ("Layout and files", {"fields": ("layout", "attach_document", "auto_delete",
                                         "default_for")}),
    )

    # --- list ---------------------------------------------------------------------------------

    @display(description="Applies to", ordering="record_type")
    def applies_to(self, obj):
        return obj.record_type_label

    @display(description="Default for")
    def default_for_label(self, obj):
        found = actions.ACTIONS.get(obj.default_for)
        return found.label if found else "—"

    @display(description="Company", ordering="company__name")
    def owner(self, obj):
        return obj.company.name if obj.company_id else "Shared"

    # --- permissions and form -----------------------------------------------------------------

    def has_change_permission(self, request, obj=None):
        """Shared templates are read-only for everyone but Template Editors."""
        if obj is not None and obj.company_id is None and not is_template_editor(request.user):
            return False
        return super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_model(self, request, obj, form, change):
        """Nothing yet: save_related saves the template with its translations at once."""

    def save_related(self, request, form, formsets, change):
        template = form.instance
        translations = []
        for formset in formsets:
            if formset.model is TemplateTranslation:
                translations = [
                    TemplateTranslation(lang=f.cleaned_data["lang"],
                                        subject=f.cleaned_data.get("subject", ""),
                                        body_html=f.cleaned_data.get("body_html", ""))
                    for f in formset.forms
                    if f.cleaned_data.get("lang") and not f.cleaned_data.get("DELETE")]
                # the change message reads these; the service wrote the rows
                formset.new_objects, formset.changed_objects = [], []
                formset.deleted_objects = []
        services.save_template(template, actor=request.user, translations=translations)
        form.save_m2m()
        for formset in formsets:
            if formset.model is TemplateAttachment:
                formset.instance = template
                self.save_formset(request, form, formset, change=change)

    def _tools_context(self, request, template: EmailTemplate) -> dict:
        try:
            record_type = record_types.get(template.record_type)
        except LookupError:
            return {}
        company = template.company or request.user.current_company
        spoken = (Partner.objects.filter(company=company, active=True)
                  .exclude(language="").values_list("language", flat=True).distinct())
        own = getattr(company, "language", "")
        names = dict(LANGUAGE_CHOICES)
        written_in = template.text_lang or own
        return {"placeholders": placeholders_for(record_type),
                "recent_records": recent_records(template, request.user),
                "languages": LANGUAGE_CHOICES,
                "own_language": names.get(written_in, written_in),
                "missing_languages": [names.get(code, code) for code in
                                      missing_languages(template, spoken, own)]}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        template = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if template is not None:
            extra.update(self._tools_context(request, template))
        return super().change_view(request, object_id, form_url, extra)

    # --- actions ------------------------------------------------------------------------------

    def _each(self, request, queryset, fn, done: str) -> None:
        count = 0
        for template in queryset:
            try:
                fn(template)
                count += 1
            except (PermissionDenied, ValidationError) as exc:
                lines = getattr(exc, "messages", [str(exc)])
                messages.error(request, f"{template}: {' '.join(lines)}")
        if count:
            messages.success(request, f"{count} template{'s' if count != 1 else ''} {done}.")

    @admin.action(description="Duplicate", permissions=["add"])
    def duplicate_selected(self, request, queryset):
        company = request.user.current_company
        self._each(request, queryset, lambda t: duplicate_template(
            t, actor=request.user, company=company if t.company_id is None and company
            and not _editor(request.user) else None), "duplicated")

    @admin.action(description="Archive", permissions=["change"])
    def archive_selected(self, request, queryset):
        self._each(request, queryset, lambda t: set_active(t, False, actor=request.user),
                   "archived")

    @admin.action(description="Unarchive", permissions=["change"])
    def unarchive_selected(self, request, queryset):
        self._each(request, queryset, lambda t: set_active(t, True, actor=request.user),
                   "unarchived")

    @action(description="Duplicate", url_path="duplicate", icon="content_copy",
            permissions=["duplicate_detail"])
    def duplicate_detail(self, request, object_id):
        template = self.get_object(request, object_id)
        if template is None:
            return redirect(reverse("admin:templating_emailtemplate_changelist"))
        company = None
        if template.company_id is None and not _editor(request.user):
            company = request.user.current_company
        try:
            copy = duplicate_template(template, actor=request.user, company=company)
        except (PermissionDenied, ValidationError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            return redirect(reverse("admin:templating_emailtemplate_change", args=[object_id]))
        messages.success(request, f"Created “{copy.name}”.")
        return redirect(reverse("admin:templating_emailtemplate_change", args=[copy.pk]))

    def has_duplicate_detail_permission(self, request, object_id=None):
        return self.has_add_permission(request)


def _editor(user) -> bool:
    return is_template_editor(user)


navigation.add_model("Email", "Email templates", "mail", EmailTemplate)


class SendByEmailMixin:
    """"Send by email" on a quotation or invoice: the composer with the default template and
    the PDF (add "send_by_email" to the admin's `actions_detail`)."""

    @action(description="Send by email", url_path="send-by-email", icon="forward_to_inbox")
    def send_by_email(self, request, object_id):
        from django.contrib.contenttypes.models import ContentType

        record_id = parse_id(str(object_id))
        if record_id is None:
            raise Http404("No such record.")
        content_type = ContentType.objects.get_for_model(self.model)
        return redirect(reverse("templating:compose", args=[content_type.pk, record_id]))
