"""The alias form: default values as real fields of the chosen record type, and the force-thread
and parent records as searchable pickers limited to the alias's company.

Nothing here changes the model: the default values are still the alias's `defaults` JSON, the
pickers still fill `thread_*`/`parent_*`. `routing.defaults` stays the rule for what an alias
may preset; the fields below only offer what it accepts (the company's own rows, the valid
choices), and the service checks again on save.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.template.loader import render_to_string
from django.utils.text import capfirst
from unfold.widgets import (
    UnfoldAdminDateWidget,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
)

from mailroom.core import record_types
from mailroom.routing import services
from mailroom.routing.defaults import is_company_field, usable_rows
from mailroom.routing.models import Alias

PREFIX = "default__"  # the POST names of the default-value fields
NOT_SET = "— not set —"
# free text (subject, body, sender's name and address) comes from each message, so the form
# offers only values that make sense for every record an alias creates
TEXT_FIELDS = (models.CharField, models.TextField)
PICKER_PAGE = 20


def service_errors(form: forms.ModelForm, check) -> None:
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


# --------------------------------------------------------------------------- record types
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


def content_type_label(content_type: ContentType) -> str:
    """A record type's label ("Helpdesk ticket") rather than the model's bare name."""
    model = content_type.model_class()
    found = record_types.for_model(model) if model is not None else None
    return found.label if found else capfirst(content_type.name)


class RecordTypeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ContentType) -> str:
        return content_type_label(obj)


# --------------------------------------------------------------------------- default values
def default_fields(record_type_key: str, company_id: int | None) -> dict[str, forms.Field]:
    """One optional form field per value an alias may preset on this record type: the
    company's rows for a relation, the valid choices for a choice field, yes/no, numbers and
    dates. Keyed by the model field's name."""
    try:
        model = record_types.get(record_type_key).model
    except LookupError:
        return {}
    fields: dict[str, forms.Field] = {}
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) or not field.editable or field.primary_key \
                or field.many_to_many or is_company_field(field):
            continue
        made = _form_field(field, company_id)
        if made is not None:
            made.required = False
            made.label = capfirst(field.verbose_name)
            made.help_text = ""
            fields[field.name] = made
    return fields


def _form_field(field: models.Field, company_id: int | None) -> forms.Field | None:
    if field.is_relation:
        rows = usable_rows(field.related_model, company_id) if company_id else None
        if rows is None:
            return None
        return forms.ModelChoiceField(queryset=rows, empty_label=NOT_SET,
                                      widget=UnfoldAdminSelectWidget)
    if field.choices:
        return forms.TypedChoiceField(choices=[("", NOT_SET), *field.flatchoices],
                                      coerce=field.to_python, empty_value=None,
                                      widget=UnfoldAdminSelectWidget)
    if isinstance(field, models.BooleanField):
        return forms.TypedChoiceField(choices=[("", NOT_SET), ("true", "Yes"), ("false", "No")],
                                      coerce=lambda v: v == "true", empty_value=None,
                                      widget=UnfoldAdminSelectWidget)
    if isinstance(field, TEXT_FIELDS) or isinstance(field, models.DateTimeField):
        return None
    if isinstance(field, models.DateField):
        return forms.DateField(widget=UnfoldAdminDateWidget)
    if isinstance(field, (models.DecimalField, models.FloatField)):
        return field.formfield(widget=UnfoldAdminDecimalFieldWidget)
    if isinstance(field, models.IntegerField):
        return field.formfield(widget=UnfoldAdminIntegerFieldWidget)
    return None


def _to_json(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def split_defaults(record_type_key: str, defaults: Any,
                   fields: dict[str, forms.Field]) -> tuple[dict, dict]:
    """(values of the offered fields by field name, every other key as stored)."""
    if not isinstance(defaults, dict):
        return {}, {}
    try:
        model = record_types.get(record_type_key).model
    except LookupError:
        return {}, dict(defaults)
    known, other = {}, {}
    for key, value in defaults.items():
        try:
            name = model._meta.get_field(key).name
        except FieldDoesNotExist:
            name = None
        if name in fields:
            known[name] = value
        else:
            other[key] = value
    return known, other


class DefaultsWidget(forms.Widget):
    """The default-value fields of the chosen record type, then the other values as JSON.
    The form sets `fields`, `record_type` and `url` before it renders."""

    template_name = "routing/admin/alias_defaults.html"

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.fields: dict[str, forms.Field] = {}
        self.record_type = ""
        self.url = ""
        self.errors: dict[str, list[str]] = {}

    def value_from_datadict(self, data, files, name):
        return {"fields": {key: data.get(PREFIX + key, "") for key in self.fields},
                "other": data.get(name, "")}

    def value_omitted_from_data(self, data, files, name):
        return False

    def render(self, name, value, attrs=None, renderer=None):
        return render_to_string(self.template_name, self.context_for(name, value))

    def context_for(self, name: str, value: Any) -> dict:
        if isinstance(value, dict) and "fields" in value:  # bound: what was posted
            values, other = value["fields"], value["other"]
        else:  # the stored JSON
            known, rest = split_defaults(self.record_type, value, self.fields)
            values = {k: v for k, v in known.items()}
            other = json.dumps(rest, ensure_ascii=False) if rest else ""
        rows = []
        for key, field in self.fields.items():
            html_name = PREFIX + key
            raw = values.get(key)
            shown = field.prepare_value("" if raw is None else
                                        ("true" if raw is True else
                                         "false" if raw is False else raw))
            rows.append({
                "id": f"id_{html_name}", "label": field.label,
                "widget": field.widget.render(html_name, shown,
                                              attrs={"id": f"id_{html_name}"}),
                "errors": self.errors.get(key, []),
            })
        try:
            label = record_types.get(self.record_type).label.lower()
        except LookupError:
            label = ""
        return {"name": name, "rows": rows, "other": other, "url": self.url,
                "record_label": label}


class DefaultsField(forms.Field):
    widget = DefaultsWidget

    def clean(self, value: Any) -> dict:
        widget: DefaultsWidget = self.widget
        widget.errors = {}
        result: dict = {}
        other = (value or {}).get("other", "").strip() if isinstance(value, dict) else ""
        if other:
            try:
                parsed = json.loads(other)
            except ValueError as exc:  # JSONDecodeError, or a number too long to convert
                detail = getattr(exc, "msg", "") or "a number is too long"
                raise ValidationError(f"Other values: not valid JSON ({detail}).") from None
            if not isinstance(parsed, dict):
                raise ValidationError('Other values: give an object such as {"note": "…"}.')
            result.update(parsed)
        raw = value.get("fields", {}) if isinstance(value, dict) else {}
        for key, field in widget.fields.items():
            try:
                cleaned = field.clean(raw.get(key, ""))
            except ValidationError as exc:
                widget.errors[key] = exc.messages
                continue
            if cleaned not in (None, ""):
                result[key] = _to_json(cleaned)
        if widget.errors:
            raise ValidationError([f"{widget.fields[k].label}: {' '.join(v)}"
                                   for k, v in widget.errors.items()])
        return result


# --------------------------------------------------------------------------- record pickers
class RecordPickerWidget(forms.Select):
    """A searchable record picker (select2 over `search_url`): it asks for records of the type
    chosen in `type_field` and of the company in the form's `company` field."""

    def __init__(self, type_field: str, attrs=None):
        super().__init__(attrs)
        self.type_field = type_field
        self.search_url = ""
        self.selected_label = ""

    @property
    def media(self):
        from django.conf import settings

        extra = "" if settings.DEBUG else ".min"
        return forms.Media(
            js=(f"admin/js/vendor/jquery/jquery{extra}.js",
                "admin/js/vendor/select2/select2.full.js", "admin/js/jquery.init.js",
                "routing/record_picker.js"),
            css={"screen": ("admin/css/vendor/select2/select2.css",
                            "admin/css/autocomplete.css")})

    def get_context(self, name, value, attrs):
        attrs = {**(attrs or {}), "class": "mr-record-picker", "data-theme": "admin-autocomplete",
                 "data-type-field": self.type_field, "data-search-url": self.search_url,
                 "data-placeholder": "Search by name or number…", "data-allow-clear": "true",
                 "style": "width: 100%"}
        self.choices = [("", "")] + ([(value, self.selected_label)] if value else [])
        return super().get_context(name, value, attrs)


def record_label(content_type_id: Any, object_id: Any) -> str:
    try:
        model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        record = model._default_manager.filter(pk=int(object_id)).first() if model else None
    except (TypeError, ValueError, ContentType.DoesNotExist):
        return ""
    return str(record) if record is not None else f"#{object_id}"


SEARCHED = ("name", "ref", "number", "partner_name", "email", "display_name")


def search_records(content_type_id: Any, company_id: Any, term: str, *, user,
                   page: int = 1) -> tuple[list[dict], bool]:
    """Records of one record type in one of the user's companies matching `term` (by name,
    reference or id): [{"id", "text"}], and whether there are more."""
    try:
        company_id = int(company_id)
        content_type = record_content_types().get(pk=int(content_type_id))
    except (TypeError, ValueError, ContentType.DoesNotExist):
        return [], False
    if not user.is_superuser and company_id not in set(user.company_ids()):
        return [], False
    model = content_type.model_class()
    rows = usable_rows(model, company_id) if model is not None else None
    if rows is None:
        return [], False
    term = (term or "").strip()
    if term:
        query = models.Q()
        for name in SEARCHED:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if isinstance(field, TEXT_FIELDS):
                query |= models.Q(**{f"{name}__icontains": term})
        if term.isdigit():
            query |= models.Q(pk=int(term))
        rows = rows.filter(query) if query else rows.none()
    start = (max(page, 1) - 1) * PICKER_PAGE
    found = list(rows.order_by("-pk")[start:start + PICKER_PAGE + 1])
    return ([{"id": r.pk, "text": str(r)} for r in found[:PICKER_PAGE]],
            len(found) > PICKER_PAGE)


# --------------------------------------------------------------------------- the alias form
class AliasForm(forms.ModelForm):
    record_type = forms.ChoiceField(
        label="Applies to", choices=record_type_choices, widget=UnfoldAdminSelectWidget,
        help_text="Mail to this alias creates records of this type.")
    defaults = DefaultsField(label="Default values", required=False)
    thread_content_type = RecordTypeChoiceField(
        queryset=ContentType.objects.none(), required=False, label="Force thread: record type",
        empty_label="— none: create records —", widget=UnfoldAdminSelectWidget)
    thread_object_id = forms.IntegerField(
        required=False, label="Force thread: record", widget=RecordPickerWidget(
            "thread_content_type"),
        help_text="Every message is posted on this one record instead of creating new ones. "
                  "Leave both empty to create records.")
    parent_content_type = RecordTypeChoiceField(
        queryset=ContentType.objects.none(), required=False, label="Parent record: type",
        empty_label="— none —", widget=UnfoldAdminSelectWidget)
    parent_object_id = forms.IntegerField(
        required=False, label="Parent record", widget=RecordPickerWidget("parent_content_type"),
        help_text="The record the alias belongs to (a project for its tasks@); its followers "
                  "count as followers for “who may write”.")

    class Meta:
        model = Alias
        fields = ("domain", "local_part", "company", "record_type", "defaults",
                  "thread_content_type", "thread_object_id", "parent_content_type",
                  "parent_object_id", "contact_policy", "allowlist_only", "bounce_message",
                  "active")
        widgets = {"bounce_message": UnfoldAdminTextareaWidget(attrs={"rows": 3})}

    def __init__(self, *args, user=None, urls: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        urls = urls or {}
        types = record_content_types()
        for prefix in ("thread", "parent"):
            self.fields[f"{prefix}_content_type"].queryset = types
            picker: RecordPickerWidget = self.fields[f"{prefix}_object_id"].widget
            picker.search_url = urls.get("records", "")
            picker.selected_label = record_label(self._value(f"{prefix}_content_type"),
                                                 self._value(f"{prefix}_object_id"))
        choices = record_type_choices()
        # a new alias shows the first type as chosen: offer that type's fields from the start
        record_type = self._value("record_type") or (choices[0][0] if choices else "")
        self.fields["record_type"].widget.attrs.update({
            "hx-get": urls.get("defaults", ""),
            "hx-trigger": "change, change from:[name=company]",
            "hx-target": "#alias-defaults", "hx-swap": "outerHTML",
            "hx-include": "[name=record_type], [name=company]"})
        self.configure_defaults(record_type, self._company_id(), urls.get("defaults", ""))

    def configure_defaults(self, record_type: str, company_id: int | None, url: str) -> None:
        widget: DefaultsWidget = self.fields["defaults"].widget
        widget.fields = default_fields(record_type, company_id)
        widget.record_type, widget.url = record_type, url

    def _value(self, name: str) -> Any:
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        if name in self.initial:
            value = self.initial[name]
            return value.pk if isinstance(value, models.Model) else value
        return getattr(self.instance, f"{name}_id" if name.endswith("content_type")
                       else name, None)

    def _company_id(self) -> int | None:
        value = self._value("company")
        try:
            return int(value) if value else None
        except (TypeError, ValueError):
            return None

    def clean_local_part(self) -> str:
        return (self.cleaned_data.get("local_part") or "").strip().lower()

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
                           f"No {content_type_label(content_type).lower()} with ID "
                           f"{object_id} in this company.")

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        self._check_record("thread")
        self._check_record("parent")
        if bool(self.instance.parent_content_type_id) != bool(self.instance.parent_object_id):
            self.add_error("parent_object_id", "Name both the type and the record.")
        if bool(self.instance.thread_content_type_id) != bool(self.instance.thread_object_id):
            self.add_error("thread_object_id", "Name both the type and the record.")
        service_errors(self, services.validate_alias)
