"""The digest form: name, periodicity, send time, recipients (users of the digest's company,
those who opted out themselves marked) and the KPIs picked from the registry, grouped by app.

The form checks what the service would refuse (unknown KPIs, recipients of another company,
a name already used in the company), so a refusal is a red line under the field; the admin
then saves through `services.save_digest`.
"""

from __future__ import annotations

from django import forms
from django.utils.html import format_html
from unfold.widgets import CHECKBOX_CLASSES

from mailroom.core import kpis as registry
from mailroom.core.models import User
from mailroom.digests.models import Digest, DigestSubscription


class RecipientsWidget(forms.CheckboxSelectMultiple):
    template_name = "digests/admin_recipients.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["checkbox_classes"] = " ".join(CHECKBOX_CLASSES)
        return context


class GroupedKpiWidget(forms.CheckboxSelectMultiple):
    """Checkboxes under one heading per app, each with the KPI's description."""

    template_name = "digests/admin_kpi_picker.html"

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.groups = list(groups)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        chosen = {str(v) for v in (value or [])}
        base_id = (attrs or {}).get("id") or f"id_{name}"
        index = 0
        groups = []
        for group, kpis in self.groups:
            items = []
            for kpi in kpis:
                items.append({"key": kpi.key, "label": kpi.label, "id": f"{base_id}_{index}",
                              "description": kpi.description, "checked": kpi.key in chosen,
                              "unit": str(kpi.unit)})
                index += 1
            groups.append({"name": group, "items": items})
        unknown = [v for v in (value or []) if v not in {i["key"] for g in groups
                                                         for i in g["items"]}]
        context["widget"].update({"kpi_groups": groups, "unknown": unknown,
                                  "checkbox_classes": " ".join(CHECKBOX_CLASSES)})
        return context


def company_users(company):
    return (User.objects.filter(companies=company, is_active=True)
            .order_by("first_name", "last_name", "username").distinct())


class RecipientChoiceField(forms.ModelMultipleChoiceField):
    def __init__(self, *args, opted_out=None, **kwargs):
        self.opted_out = opted_out or {}
        super().__init__(*args, **kwargs)

    def label_from_instance(self, user):
        name = user.get_full_name() or user.username
        when = self.opted_out.get(user.pk)
        if when is not None:
            return format_html('{} <span class="mr-dg-optout">unsubscribed themselves on {} — '
                               'only they can subscribe again</span>', name,
                               f"{when:%d %b %Y}")
        if not user.email:
            return format_html('{} <span class="mr-dg-optout">no email address</span>', name)
        return name


class DigestForm(forms.ModelForm):
    """`company` is passed in: the digest's own, or the current company for a new one."""

    recipients = RecipientChoiceField(queryset=User.objects.none(), required=False,
                                      widget=RecipientsWidget)
    kpis = forms.MultipleChoiceField(
        label="KPIs", required=False, choices=(),
        error_messages={"invalid_choice": "Unknown KPI: %(value)s. Pick KPIs from the list."},
        help_text="The numbers the email shows, in this order. Each recipient sees only the "
                  "KPIs their roles allow.")

    class Meta:
        model = Digest
        fields = ("name", "periodicity", "send_time", "active")

    def __init__(self, *args, company=None, **kwargs):
        super().__init__(*args, **kwargs)
        if company is not None and self.instance._state.adding:
            self.instance.company = company
        self.company = company if company is not None else self.instance.company
        if "send_time" in self.fields:
            self.fields["send_time"].widget.format = "%H:%M"
        kpis = registry.for_company(self.company)
        self.fields["kpis"].choices = [(k.key, k.label) for k in kpis]
        self.fields["kpis"].widget = GroupedKpiWidget(groups=registry.grouped(kpis))
        opted_out = {}
        if not self.instance._state.adding:
            rows = DigestSubscription.objects.filter(digest=self.instance)
            opted_out = {r.user_id: r.changed_at for r in rows if not r.subscribed
                         and r.changed_by != DigestSubscription.Source.ADMIN}
            self.fields["recipients"].initial = [r.user_id for r in rows if r.subscribed]
            self.fields["kpis"].initial = list(self.instance.kpis or [])
        field = self.fields["recipients"]
        field.queryset = company_users(self.company)
        field.opted_out = opted_out
        field.help_text = ("Users of this company. Someone who unsubscribed themselves stays "
                           "unsubscribed when you save: only they can subscribe again, from "
                           "My preferences.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Digest.objects.filter(company=self.company, name__iexact=name)
        if not self.instance._state.adding:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("This company already has a digest with that name.")
        return name

    def clean_kpis(self):
        """The KPIs picked, in the digest's order so far, then the new ones."""
        picked = list(dict.fromkeys(self.cleaned_data.get("kpis") or []))
        before = [key for key in (self.instance.kpis or []) if key in picked]
        return before + [key for key in picked if key not in before]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("active") and "kpis" in cleaned and not cleaned["kpis"]:
            self.add_error("kpis", "Pick at least one KPI: an active digest with none would "
                                   "send an empty email.")
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if "kpis" in self.cleaned_data:
            self.instance.kpis = self.cleaned_data["kpis"]
