"""Custom KPIs in the back office: an office admin defines a number from a record type, a
date, an aggregate and a few filter lines — no code. Saved through
`custom_kpi_services.save_custom_kpi`, so the form shows the service's refusals as red lines
under the field; the change page previews the value for the last 7 and 30 days."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.decorators import display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from mailroom.core import navigation, record_types
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.kpis import Unit
from mailroom.digests import custom_kpi_services as services
from mailroom.digests.models import CustomKpi
from mailroom.lib import formatting


def _record_type_choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(rt.key, rt.label_plural) for rt in record_types.all_types()]


def _field_choices(kind) -> list:
    """Grouped by record type: "Leads" → created at, won on… (the service checks the field
    belongs to the record type picked above)."""
    groups: list = [("", "—")]
    for rt in record_types.all_types():
        fields = kind(rt.model)
        if fields:
            groups.append((rt.label_plural, [(f.name, f"{services.label(f)} · {rt.label}")
                                             for f in fields]))
    return groups


FILTER_HELP = (
    "One condition per line, all must hold: <code>field operator value</code>, e.g. "
    "<code>stage equals won</code>, <code>expected_revenue greater than 1000</code>, "
    "<code>email is set</code>. Operators: " + ", ".join(services.OPERATORS) + ".")


class FilterLinesField(forms.CharField):
    """The filters as lines of text; the service checks fields, operators and values."""

    widget = UnfoldAdminTextareaWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(strip=False, **kwargs)
        self.widget.attrs.update({"rows": 4, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(services.format_line(item) for item in value
                             if isinstance(item, dict))
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [services.parse_line(line) for line in text.splitlines() if line.strip()]

    def has_changed(self, initial, data):
        return self.prepare_value(initial or []) != "\n".join(
            line for line in (data or "").splitlines() if line.strip())


class CustomKpiForm(forms.ModelForm):
    record_type = forms.ChoiceField(label="Record type", choices=_record_type_choices,
                                    widget=UnfoldAdminSelectWidget)
    date_field = forms.ChoiceField(
        label="Date", choices=lambda: _field_choices(services.date_fields),
        widget=UnfoldAdminSelectWidget,
        help_text="The date that puts a record in a period (of the record type above).")
    value_field = forms.ChoiceField(
        label="Number", required=False,
        choices=lambda: _field_choices(services.number_fields),
        widget=UnfoldAdminSelectWidget, help_text="For sum and average: the number added up.")
    unit = forms.ChoiceField(choices=services.UNITS, initial=Unit.COUNT.value,
                             widget=UnfoldAdminSelectWidget)
    filters = FilterLinesField(help_text=FILTER_HELP)

    class Meta:
        model = CustomKpi
        fields = ("name", "record_type", "date_field", "aggregate", "value_field", "filters",
                  "unit", "higher_is_better", "active")

    def __init__(self, *args, company=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.company_id is None and company is not None:
            self.instance.company = company

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        if self.instance.company_id is None:
            self.add_error(None, "Pick a company to work in first (the company menu).")
            return
        try:
            services.validate_custom_kpi(self.instance)
            clash = CustomKpi.objects.filter(company=self.instance.company_id,
                                             name=self.instance.name)
            if clash.exclude(pk=self.instance.pk).exists():
                raise ValidationError({"name": "Another custom KPI has this name."})
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)


@admin.register(CustomKpi)
class CustomKpiAdmin(CompanyScopedAdmin):
    form = CustomKpiForm
    list_display = ("name", "record_type_label", "aggregate", "unit", "active")
    list_filter = ("active", "record_type")
    search_fields = ("name",)
    readonly_fields = ("preview",)
    fieldsets = (
        (None, {"fields": ("name", "record_type", "date_field", ("aggregate", "value_field"),
                           "filters", ("unit", "higher_is_better"), "active")}),
        ("Preview", {"fields": ("preview",),
                     "description": "Computed now for your current data; saved changes show "
                                    "here."}),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        company = request.user.current_company

        class Form(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args, **kw):
                super().__init__(*args, company=company, **kw)

        return Form

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is not None else self.fieldsets[:1]

    @display(description="Record type")
    def record_type_label(self, obj: CustomKpi) -> str:
        try:
            return record_types.get(obj.record_type).label_plural
        except LookupError:
            return f"{obj.record_type} (no longer available)"

    @display(description="Value")
    def preview(self, obj: CustomKpi | None):
        if obj is None or obj.pk is None:
            return "—"
        company = obj.company
        zone = formatting.time_zone(company.timezone)
        end = timezone.now().astimezone(zone)
        rows = []
        for days in (7, 30):
            try:
                value = services.compute(obj, company, end - timedelta(days=days), end)
            except (ValidationError, ValueError, LookupError) as exc:
                text = f"not available ({exc})"
            else:
                text = _format(value, obj.unit, company)
            rows.append((f"Last {days} days", text))
        return format_html("<dl>{}</dl>", format_html_join(
            "", "<dt class=\"font-semibold\">{}</dt><dd class=\"mb-2\">{}</dd>", rows))

    def save_model(self, request, obj, form, change):
        services.save_custom_kpi(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_custom_kpi(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for kpi in queryset:
            services.delete_custom_kpi(kpi, actor=request.user)


def _format(value, unit: str, company) -> str:
    if value is None:
        return "no records"
    locale = formatting.normalize_locale(company.language)
    if unit == Unit.MONEY:
        return formatting.format_money(Decimal(str(value)), company.currency, locale)
    if unit == Unit.PERCENT:
        return formatting.format_number(round(Decimal(str(value)), 1), locale) + " %"
    if unit == Unit.DURATION:
        seconds = int(value)
        hours, rest = divmod(seconds, 3600)
        return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60} s"
    return formatting.format_number(value, locale)


navigation.add_model("Settings", "Custom KPIs", "query_stats", CustomKpi)
