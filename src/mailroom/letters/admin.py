"""Email › Letters, Postal providers and Print batches.

Letters are written by the services only: the screens are read-only with Retry/Cancel (Mail
Managers), batches get "Mark printed"/"Mark dispatched"/"Send to printer". Provider
credentials are write-only: never rendered back, a blank field keeps the stored ones.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.decorators import action, display

from mailroom.core.access import allowed
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.secret_forms import WriteOnlySecrets, secret_field
from mailroom.letters import lifecycle, provider_services
from mailroom.letters.models import Letter, PostalProvider, PrintBatch
from mailroom.lib.params import parse_id

LETTER_COLOURS = {
    "draft": "info", "queued": "info", "submitted": "primary", "printed": "primary",
    "dispatched": "success", "delivered": "success", "returned": "warning",
    "error": "danger", "cancelled": "danger",
}
BATCH_COLOURS = {"open": "info", "printed": "primary", "dispatched": "success"}


def _pk(object_id) -> int:
    """The id in a detail action's URL; anything but a number is a 404, not a ValueError."""
    pk = parse_id(str(object_id))
    if pk is None:
        raise Http404("No such object.")
    return pk


class RecordTypeFilter(admin.SimpleListFilter):
    title = "record type"
    parameter_name = "record_type"

    def lookups(self, request, model_admin):
        seen = (Letter.objects.for_current_company(request.user)
                .values_list("content_type_id", "content_type__app_label",
                             "content_type__model").distinct())
        return [(pk, f"{app}.{model}") for pk, app, model in seen]

    def queryset(self, request, queryset):
        return queryset.filter(content_type_id=self.value()) if self.value() else queryset


def _confirm(request, *, title: str, question: str, button: str, back: str):
    """Detail actions are links (GET): they ask first and act on the POST that follows."""
    return TemplateResponse(request, "letters/admin/confirm.html", {
        **admin.site.each_context(request), "title": title, "question": question,
        "button": button, "back": back})


def _act(request, function, obj, done: str):
    try:
        function(obj, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, text)
    else:
        messages.success(request, done)


@admin.register(Letter)
class LetterAdmin(CompanyScopedAdmin):
    list_display = ["id", "recipient", "document", "record_type_label", "state_chip",
                    "provider", "pages", "price_label", "created_at"]
    list_display_links = ["id", "recipient"]
    list_filter = ["state", "provider", "created_at", RecordTypeFilter]
    search_fields = ["address_name", "record_label", "tracking_number", "provider_ref",
                     "partner__name"]
    date_hierarchy = "created_at"
    list_select_related = ["provider", "content_type"]
    actions_detail = ["retry_letter", "cancel_letter"]
    fieldsets = [
        (None, {"fields": ["state_text", "pdf_link", "record_link", "address_block",
                           "provider", "provider_ref", "tracking_number", "price_label"]}),
        ("Problem", {"fields": ["error_code", "error_message", "error_action", "attempts",
                                "next_attempt_at"]}),
        ("Envelope", {"fields": ["pages", "sheets", "paper", "color", "duplex", "cover_page",
                                 "postage", "documents_list", "batch"]}),
        ("Timeline", {"fields": ["timeline"]}),
        ("Dates", {"fields": ["created_by", "created_at", "submitted_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f for fs in self.fieldsets for f in fs[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only: Retry and Cancel go through the services

    def has_manage_permission(self, request, object_id=None):
        return allowed(request.user, "letters.change_letter")

    @display(description="State", label=LETTER_COLOURS)
    def state_chip(self, obj: Letter):
        return obj.state, obj.get_state_display()

    @display(description="State")
    def state_text(self, obj: Letter):
        return obj.get_state_display()

    def get_fieldsets(self, request, obj=None):
        """The Problem section only when there is one."""
        if obj is not None and not obj.error_code and obj.state != Letter.State.ERROR:
            return [fs for fs in self.fieldsets if fs[0] != "Problem"]
        return self.fieldsets

    @display(description="Recipient", ordering="address_name")
    def recipient(self, obj: Letter):
        return obj.address_name

    @display(description="Document", ordering="record_label")
    def document(self, obj: Letter):
        return obj.record_label

    @display(description="Record type")
    def record_type_label(self, obj: Letter):
        return obj.content_type.name

    @display(description="Price")
    def price_label(self, obj: Letter):
        return f"{obj.price} {obj.currency}" if obj.price is not None else "—"

    @display(description="PDF")
    def pdf_link(self, obj: Letter):
        if not obj.pdf_sha256:
            return "—"
        url = reverse("letters:letter_pdf", args=[obj.pk])
        return format_html('<a class="text-primary-600" href="{}" target="_blank" '
                           'rel="noopener">Open the PDF</a> · <a class="text-primary-600" '
                           'href="{}?download=1">Download</a>', url, url)

    @display(description="Record")
    def record_link(self, obj: Letter):
        try:
            url = reverse(f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change",
                          args=[obj.object_id])
        except Exception:  # noqa: BLE001 - a record type without an admin page
            return obj.record_label
        return format_html('<a class="text-primary-600" href="{}">{}</a>', url,
                           obj.record_label or obj.object_id)

    @display(description="Address (as printed)")
    def address_block(self, obj: Letter):
        return format_html("<address style='font-style:normal'>{}</address>",
                           format_html_join("", "{}<br>", ((line,) for line in obj.address_lines)))

    @display(description="Documents")
    def documents_list(self, obj: Letter):
        return ", ".join(f"{d.get('name')} ({d.get('kind')})" for d in obj.documents) or "—"

    @display(description="Events")
    def timeline(self, obj: Letter):
        cell = "padding:.25rem 1rem .25rem 0;text-align:left;vertical-align:top"
        rows = format_html_join(
            "", f"<tr><td style='{cell}'>{{}}</td><td style='{cell}'>{{}}</td>"
                f"<td style='{cell}'>{{}}</td><td style='{cell}'>{{}}</td></tr>",
            ((timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M"), event.get_state_display(),
              event.get_source_display(), event.message) for event in obj.events.all()))
        head = "".join(f"<th style='{cell}'>{name}</th>" for name in ("When", "State", "By",
                                                                       "What"))
        return format_html("<table class='mr-letter-events'><tr>{}</tr>{}</table>",
                           mark_safe(head), rows)  # noqa: S308 - fixed strings

    def _letter(self, request, object_id) -> Letter:
        letter = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if letter is None:
            raise PermissionDenied("No such letter.")
        return letter

    @action(description="Retry", url_path="retry", icon="refresh", permissions=["manage"])
    def retry_letter(self, request, object_id):
        letter = self._letter(request, object_id)
        back = reverse("admin:letters_letter_change", args=[letter.pk])
        if request.method != "POST":
            return _confirm(request, title=f"Retry {letter}", button="Retry", back=back,
                            question="Put this letter back in the queue?")
        _act(request, lifecycle.retry, letter, "The letter is queued again.")
        return redirect(back)

    @action(description="Cancel", url_path="cancel", icon="cancel", permissions=["manage"])
    def cancel_letter(self, request, object_id):
        letter = self._letter(request, object_id)
        back = reverse("admin:letters_letter_change", args=[letter.pk])
        if request.method != "POST":
            return _confirm(request, title=f"Cancel {letter}", button="Cancel the letter",
                            back=back, question="It will not be printed or posted.")
        _act(request, lifecycle.cancel, letter, "The letter is cancelled.")
        return redirect(back)


class ProviderForm(WriteOnlySecrets, forms.ModelForm):
    secret_fields = {"credentials": "credential"}
    credentials = secret_field("Credentials")

    class Meta:
        model = PostalProvider
        fields = ["company", "name", "kind", "active", "window_standard", "settings",
                  "credentials"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.describe_secrets()


@admin.register(PostalProvider)
class PostalProviderAdmin(CompanyScopedAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "active", "window_standard", "paused_label"]
    list_filter = ["kind", "active"]
    search_fields = ["name"]
    readonly_fields = ["webhook_url", "paused_until", "paused_reason"]
    actions_detail = ["test_connection", "resume"]

    @display(description="Webhook URL")
    def webhook_url(self, obj: PostalProvider):
        """Where Pingen or Lob sends its status events (set it in their dashboard)."""
        if not obj.pk:
            return "Shown once the provider is saved."
        if obj.kind == PostalProvider.Kind.LOCAL:
            return "The print room needs none: people mark batches printed and dispatched."
        path = reverse("letters:webhook", args=[obj.pk])
        return f"{settings.BASE_URL.rstrip('/')}{path}"

    @display(description="Paused")
    def paused_label(self, obj: PostalProvider):
        return f"until {obj.paused_until:%Y-%m-%d %H:%M}: {obj.paused_reason}" \
            if obj.is_paused() else "—"

    def save_model(self, request, obj, form, change):
        provider_services.save_provider(obj, actor=request.user,
                               keep_credentials=not form.cleaned_data.get("credentials"))

    def has_resume_permission(self, request, object_id=None):
        return allowed(request.user, "letters.change_postalprovider")

    @action(description="Test connection", url_path="test", icon="network_check",
            permissions=["resume"])
    def test_connection(self, request, object_id):
        provider = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if provider is not None:
            ok, message = provider_services.test_provider(provider, actor=request.user)
            (messages.success if ok else messages.error)(request, message)
        return redirect(reverse("admin:letters_postalprovider_change", args=[object_id]))

    @action(description="Resume now", url_path="resume", icon="play_arrow",
            permissions=["resume"])
    def resume(self, request, object_id):
        if request.method != "POST":
            return _confirm(request, title="Resume now", button="Resume",
                            back=reverse("admin:letters_postalprovider_change",
                                         args=[object_id]),
                            question="Send the waiting letters again now?")
        provider = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if provider is not None:
            _act(request, provider_services.resume_provider, provider,
                 "The provider's queue resumes.")
        return redirect(reverse("admin:letters_postalprovider_change", args=[object_id]))


@admin.register(PrintBatch)
class PrintBatchAdmin(CompanyScopedAdmin):
    list_display = ["__str__", "day", "paper", "state_chip", "letter_count", "sheet_count",
                    "pdf_link"]
    list_filter = ["state", "paper", "day", "provider"]
    readonly_fields = ["provider", "day", "paper", "state", "letter_count", "sheet_count",
                       "pdf_link", "print_error", "printed_at", "dispatched_at", "letters_list"]
    fields = readonly_fields
    actions_detail = ["mark_printed", "mark_dispatched", "send_to_printer"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_mark_permission(self, request, object_id=None):
        return allowed(request.user, "letters.change_printbatch")

    @display(description="State", label=BATCH_COLOURS)
    def state_chip(self, obj: PrintBatch):
        return obj.state, obj.get_state_display()

    @display(description="PDF")
    def pdf_link(self, obj: PrintBatch):
        if not obj.letter_count and not obj.pdf_sha256:
            return "—"
        url = reverse("letters:batch_pdf", args=[obj.pk])
        return format_html('<a class="text-primary-600" href="{}" target="_blank" '
                           'rel="noopener">Open</a> · <a class="text-primary-600" '
                           'href="{}?download=1">Download</a>', url, url)

    @display(description="Letters")
    def letters_list(self, obj: PrintBatch):
        return format_html_join(
            "", '<div><a class="text-primary-600" href="{}">#{} {}</a> – {}</div>',
            ((reverse("admin:letters_letter_change", args=[letter.pk]), letter.pk,
              letter.address_name, letter.get_state_display())
             for letter in obj.letters.order_by("id")))

    def _batch(self, request, object_id) -> PrintBatch:
        batch = self.get_queryset(request).filter(pk=_pk(object_id)).first()
        if batch is None:
            raise PermissionDenied("No such print batch.")
        return batch

    def _back(self, object_id):
        return redirect(reverse("admin:letters_printbatch_change", args=[object_id]))

    def _move(self, request, object_id, title: str, service, *, question: str, done: str):
        """GET asks first; the POST moves the batch and its letters through `service`."""
        if request.method != "POST":
            return _confirm(request, title=title, button=title, question=question,
                            back=reverse("admin:letters_printbatch_change", args=[object_id]))
        _act(request, service, self._batch(request, object_id), done)
        return self._back(object_id)

    @action(description="Mark printed", url_path="printed", icon="print",
            permissions=["mark"])
    def mark_printed(self, request, object_id):
        return self._move(request, object_id, "Mark printed", lifecycle.mark_batch_printed,
                          question="Every letter of the batch becomes printed.",
                          done="The batch and its letters are printed.")

    @action(description="Mark dispatched", url_path="dispatched", icon="local_shipping",
            permissions=["mark"])
    def mark_dispatched(self, request, object_id):
        return self._move(request, object_id, "Mark dispatched",
                          lifecycle.mark_batch_dispatched,
                          question="Every letter of the batch was handed to the post.",
                          done="The batch and its letters are handed to the post.")

    @action(description="Send to printer", url_path="print", icon="print_connect",
            permissions=["mark"])
    def send_to_printer(self, request, object_id):
        if request.method != "POST":
            return _confirm(request, title="Send to printer", button="Send to printer",
                            back=reverse("admin:letters_printbatch_change", args=[object_id]),
                            question="Print the whole batch on the print room's printer queue.")
        error = lifecycle.send_batch_to_printer(self._batch(request, object_id),
                                               actor=request.user)
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "The batch is on its way to the printer.")
        return self._back(object_id)
