"""Email › Campaigns: the list (state, progress, rates) and the editor of a draft or
scheduled campaign, with its translations and the live audience count beside the lists.

Saving goes through `campaign_services`: `save_campaign` then one `save_translation` per
language, in one savepoint run while the admin checks its formsets — a refused field (a from
address outside the company's sending domains, a broken placeholder) rolls everything back and
shows as a red line under that field, never a traceback. A campaign past "scheduled" opens
read-only and points to its page (/campaigns/c/<id>/), where it is sent, followed and measured.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import StackedInline
from unfold.decorators import display
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminSelectWidget

from mailroom.campaigns import campaign_services, stats
from mailroom.campaigns.campaign_models import Campaign, CampaignTranslation, Segment
from mailroom.campaigns.models import MailingList
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.outgoing.models import MailServer, Purpose
from mailroom.templating.forms import RichTextarea

STATE_COLOURS = {"draft": "info", "scheduled": "info", "preparing": "primary",
                 "sending": "primary", "paused": "warning", "cancelled": "warning",
                 "done": "success", "failed": "danger"}
LIST_FIELDS = ("lists", "exclude_lists")


def company_lists(company_id):
    return MailingList.objects.filter(company_id=company_id, active=True).order_by("name")


class CampaignForm(forms.ModelForm):
    company_id = None  # set per request by CampaignAdmin.get_form

    class Meta:
        model = Campaign
        fields = ["name", "subject", "preview_text", "email_from", "reply_to", "layout",
                  "lang", "body_html", "lists", "segments", "exclude_lists", "track_opens",
                  "track_clicks", "server", "bounce_limit", "complaint_limit", "guard_after",
                  "deliverability_override", "ab_test", "subject_b", "body_html_b",
                  "ab_sample", "ab_metric", "ab_hours"]
        widgets = {"body_html": RichTextarea(), "body_html_b": RichTextarea(),
                   "lists": UnfoldAdminCheckboxSelectMultipleWidget(),
                   "exclude_lists": UnfoldAdminCheckboxSelectMultipleWidget(),
                   "segments": UnfoldAdminCheckboxSelectMultipleWidget()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in LIST_FIELDS:
            if name in self.fields:
                self.fields[name].queryset = company_lists(self.company_id)
        if "segments" in self.fields:
            self.fields["segments"].queryset = Segment.objects.filter(
                company_id=self.company_id).order_by("name")
        if "server" in self.fields:
            self.fields["server"].queryset = MailServer.objects.filter(
                company_id=self.company_id, purpose__in=[Purpose.BULK, Purpose.BOTH])
        if "lang" in self.fields:
            self.fields["lang"] = forms.ChoiceField(
                label="Language", required=False,
                choices=[("", "The company's language"), *LANGUAGE_CHOICES],
                help_text=Campaign._meta.get_field("lang").help_text,
                widget=UnfoldAdminSelectWidget())


class TranslationForm(forms.ModelForm):
    class Meta:
        model = CampaignTranslation
        fields = ["lang", "subject", "preview_text", "body_html"]
        widgets = {"body_html": RichTextarea()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lang"] = forms.ChoiceField(label="Language", choices=LANGUAGE_CHOICES,
                                                widget=UnfoldAdminSelectWidget())


def error_lines(exc: ValidationError) -> dict:
    return exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}


class TranslationFormSet(forms.BaseInlineFormSet):
    """The translations; checking them also saves the campaign through the services (the
    admin checks formsets after the form and re-renders only when one is invalid): in a
    savepoint, so a refusal rolls everything back and comes back as red lines under the
    fields instead of a 500. `request` is set per request by TranslationInline."""

    request = None
    _service_result = None
    _checking = False

    def is_valid(self) -> bool:
        if self._service_result is not None:  # saved once: the admin asks again
            return self._service_result
        if self._checking:  # asked from inside its own clean (validate_unique)
            return super().is_valid()
        self._checking = True
        try:
            valid = super().is_valid()
        finally:
            self._checking = False
        form = getattr(self.request, "_campaign_form", None)
        if not valid or form is None or not self.is_bound or form.errors:
            return valid
        self._service_result = save_through_services(self.request, form, self)
        return self._service_result


def save_through_services(request, form, formset) -> bool:
    campaign = form.instance
    creating = campaign.pk is None
    if campaign.company_id is None:
        form.add_error(None, "Choose a company in the top bar first: a campaign belongs to "
                             "one company.")
        return False
    try:
        with transaction.atomic():
            campaign_services.save_campaign(
                campaign, actor=request.user, lists=form.cleaned_data.get("lists"),
                exclude_lists=form.cleaned_data.get("exclude_lists"),
                segments=form.cleaned_data.get("segments"))
            _save_translations(request, campaign, formset)
    except (ValidationError, PermissionDenied) as exc:
        if creating:
            campaign.pk = None
            campaign._state.adding = True
        if isinstance(exc, PermissionDenied):
            form.add_error(None, str(exc))
        else:
            for field, lines in error_lines(exc).items():
                form.add_error(field if field in form.fields else None, lines)
        return False
    request._campaign_saved = True
    # what the admin's change message reads; the services wrote the rows
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    return True


def _save_translations(request, campaign, formset) -> None:
    for sub in formset.forms:
        data = sub.cleaned_data
        if not data.get("lang") or not sub.has_changed():
            continue
        try:
            campaign_services.save_translation(
                campaign, data["lang"], subject=data.get("subject", ""),
                preview_text=data.get("preview_text", ""),
                body_html=data.get("body_html", ""), actor=request.user)
        except ValidationError as exc:
            lines = [f"{data['lang']}: {line}" for line in exc.messages]
            raise ValidationError(lines) from None


class TranslationInline(StackedInline):
    model = CampaignTranslation
    form = TranslationForm
    formset = TranslationFormSet
    fields = ("lang", "subject", "preview_text", "body_html")
    extra = 0
    can_delete = False  # an emptied subject and body removes a language (save_translation)
    tab = True
    verbose_name_plural = "Translations"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"request": request})


@admin.register(Campaign)
class CampaignAdmin(CompanyScopedAdmin):
    form = CampaignForm
    inlines = [TranslationInline]
    list_display = ["name", "state_chip", "progress", "sent", "open_rate", "click_rate",
                    "when", "page_link"]
    list_filter = ["state"]
    search_fields = ["name", "subject"]
    readonly_fields = ["audience"]
    fieldsets = (
        (None, {"fields": ("name", "subject", "preview_text", "email_from", "reply_to")}),
        ("Content", {"fields": ("layout", "lang", "body_html")}),
        ("Audience", {"fields": ("lists", "segments", "exclude_lists", "audience")}),
        ("Tracking", {"fields": ("track_opens", "track_clicks")}),
        ("A/B test", {"classes": ["collapse"], "fields": (
            "ab_test", "subject_b", "body_html_b", "ab_sample", "ab_metric", "ab_hours")}),
        ("Sending", {"classes": ["collapse"], "fields": (
            "server", "bounce_limit", "complaint_limit", "guard_after",
            "deliverability_override")}),
    )
    change_form_before_template = "campaigns/campaign_editor_top.html"

    # --- list ---------------------------------------------------------------------------------

    @display(description="State", label=STATE_COLOURS, ordering="state")
    def state_chip(self, obj: Campaign):
        return obj.state, obj.get_state_display()

    @display(description="Queued")
    def progress(self, obj: Campaign):
        if obj.state in (Campaign.State.DRAFT, Campaign.State.SCHEDULED):
            return "—"
        return f"{obj.queued:,} / {obj.total:,}"

    def _figures(self, obj: Campaign) -> dict:
        cached = getattr(obj, "_figures", None)
        if cached is None:
            cached = obj._figures = stats.summary(obj)
        return cached

    @display(description="Sent")
    def sent(self, obj: Campaign):
        return f"{self._figures(obj)['sent']:,}"

    @display(description="Opened")
    def open_rate(self, obj: Campaign):
        return _rate(self._figures(obj), "opened")

    @display(description="Clicked")
    def click_rate(self, obj: Campaign):
        return _rate(self._figures(obj), "clicked")

    @display(description="Scheduled / started", ordering="started_at")
    def when(self, obj: Campaign):
        moment = obj.started_at or obj.scheduled_at
        if moment is None:
            return "—"
        prefix = "Starts " if obj.state == Campaign.State.SCHEDULED else ""
        return f"{prefix}{timezone.localtime(moment):%Y-%m-%d %H:%M}"

    @display(description="")
    def page_link(self, obj: Campaign):
        return format_html('<a class="text-primary-600 font-semibold" href="{}">Open page</a>',
                           reverse("campaigns:campaign", args=[obj.pk]))

    # --- editor -------------------------------------------------------------------------------

    @display(description="Audience")
    def audience(self, obj: Campaign):
        from mailroom.campaigns.campaign_views import audience_block  # noqa: PLC0415 - cycle

        return audience_block(obj)

    def _company_id(self, request, obj):
        return obj.company_id if obj is not None else request.user.current_company_id

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        def remember(self, *args, **kwargs):
            # ModelAdmin does not hand the form it builds to _create_formsets: keep it here
            form.__init__(self, *args, **kwargs)
            request._campaign_form = self

        return type(form.__name__, (form,), {"company_id": self._company_id(request, obj),
                                             "__init__": remember})

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.editable:
            return False  # read-only: it is sent, followed and measured on its page
        return super().has_change_permission(request, obj)

    def save_form(self, request, form, change):
        campaign = form.instance
        if not change:
            campaign.company_id = form.company_id
        return campaign

    def save_model(self, request, obj, form, change):
        """Checking the translations saved the campaign already (TranslationFormSet); without
        that inline (no permission on translations) it is saved here."""
        if not getattr(request, "_campaign_saved", False):
            campaign_services.save_campaign(obj, actor=request.user,
                                            lists=form.cleaned_data.get("lists"),
                                            exclude_lists=form.cleaned_data.get("exclude_lists"),
                                            segments=form.cleaned_data.get("segments"))

    def save_related(self, request, form, formsets, change):
        """Nothing: the lists and translations went through the services with the campaign."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if object_id is not None:
            campaign = self.get_object(request, object_id)
            if campaign is not None:
                extra["campaign_page"] = reverse("campaigns:campaign", args=[campaign.pk])
                extra["campaign_obj"] = campaign
        return super().changeform_view(request, object_id, form_url, extra)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.pop("company", None)
        return initial


def _rate(figures: dict, name: str) -> str:
    rate = (figures.get("rates") or {}).get(name)
    return "—" if rate is None or not figures.get("sent") else f"{rate:.1f} %"
