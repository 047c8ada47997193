"""Admin pieces shared by priced documents (quotations and invoices).

Line inlines are shown by unfold, but their rows are written by the document's `set_lines`
service (never by the formset), so the admin follows the same rules and the same arithmetic
as the API. Form buttons ("Save and confirm") run after the lines are saved.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from unfold.admin import TabularInline

from mailroom.business.sales.models import Tax
from mailroom.core.admin_actions import error_text
from mailroom.documents.admin_buttons import PdfButtonsMixin

LINE_FORM_FIELDS = ("sequence", "description", "quantity", "price_unit", "discount")


class LineInline(TabularInline):
    """Editable while the document is editable; read-only afterwards."""

    fields = ("sequence", "description", "quantity", "price_unit", "discount", "taxes",
              "subtotal")
    readonly_fields = ("subtotal",)
    autocomplete_fields = ("taxes",)
    extra = 1
    tab = False

    def _locked(self, obj) -> bool:
        return obj is not None and not obj.is_editable

    def has_add_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_delete_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "taxes":
            kwargs["queryset"] = Tax.objects.for_user(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def lines_from_formset(formset) -> list[dict]:
    """The formset's rows as `set_lines` input (deleted and empty extra rows left out)."""
    lines = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or (formset.can_delete and formset._should_delete_form(form)):
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        line = {name: data[name] for name in LINE_FORM_FIELDS if name in data}
        line["tax_ids"] = [tax.pk for tax in data.get("taxes") or []]
        if form.instance.pk is not None:
            line["id"] = form.instance.pk
        lines.append(line)
    return lines


class DocumentAdminMixin(PdfButtonsMixin):
    """For a RecordAdmin with a `LineInline`: lines through `set_lines_service` (a
    staticmethod), then the pressed `actions_submit_line` button; refusals become messages.
    The change page also links the document's PDF (preview and download)."""

    line_model = None
    set_lines_service: Callable | None = None

    def save_formset(self, request, form, formset, change):
        if formset.model is not self.line_model:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # fills new/changed/deleted_objects for the history only
        document = form.instance
        if not document.is_editable or not formset.has_changed():
            return None
        try:
            self.set_lines_service(document, lines_from_formset(formset), actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, f"Lines not saved: {error_text(exc)}", messages.ERROR)
        return None

    def get_actions_submit_line(self, request, object_id):
        """"Save and confirm" / "Save and post" only while the document can still move."""
        actions = super().get_actions_submit_line(request, object_id)
        if actions and object_id:
            document = self.get_object(request, str(object_id))
            if document is not None and not document.is_editable:
                return []
        return actions

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for action in self.get_actions_submit_line(request, form.instance.pk):
            if action.action_name in request.POST:
                action.method(request, form.instance)

    def run_service(self, request, service: Callable, obj, done: str) -> None:
        try:
            service(obj, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
