"""Outgoing screens: servers (with Test connection), DKIM keys and the email hub.

Every write goes through `server_services` or `outgoing.services`; the hub itself is read-only
and its actions (Send now / Retry / Cancel) are for Mail Managers only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.contrib.filters.admin import (
    BooleanRadioFilter,
    ChoicesDropdownFilter,
    DropdownFilter,
    RangeDateFilter,
)
from unfold.decorators import display

from mailroom.core import navigation
from mailroom.core.admin_actions import error_text
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.roles import Role
from mailroom.core.server_admin import ServerAdmin
from mailroom.outgoing import server_services, services
from mailroom.outgoing.feedback import config as feedback_config
from mailroom.outgoing.forms import DkimKeyAddForm, MailServerForm
from mailroom.outgoing.models import DkimKey, FeedbackEvent, FeedbackKind, MailServer, OutgoingMail
from mailroom.outgoing.views import (
    MAIL_STATE_COLOURS,
    cancel_confirmation,
    failure_summary,
    is_mail_manager,
    mail_detail_context,
    record_link,
    state_counts,
)


# --------------------------------------------------------------------------- servers
@admin.register(MailServer)
class MailServerAdmin(ServerAdmin):
    form = MailServerForm
    status_field = "test_status"
    list_display = ("name", "address", "security", "purpose", "sequence", "active",
                    "status_chip", "circuit")
    list_display_links = ("name",)
    list_filter = ("active", "purpose", "test_status")
    search_fields = ("name", "host", "from_filter", "username")
    readonly_fields = ("test_result", "circuit_state", "feedback_webhook")
    change_form_outer_before_template = "outgoing/admin/server_test_box.html"
    # show only the fields of the chosen authentication (unfold evaluates these with Alpine)
    conditional_fields = {
        "verify_certificate": "security != 'none'",
        "username": "auth == 'password' || auth == 'xoauth2'",
        "password": "auth == 'password'",
        "oauth_provider": "auth == 'xoauth2'",
        "oauth_client_id": "auth == 'xoauth2'",
        "oauth_client_secret": "auth == 'xoauth2'",
        "oauth_refresh_token": "auth == 'xoauth2'",
        "client_certificate": "auth == 'certificate'",
        "client_key": "auth == 'certificate'",
        "feedback_secret": "feedback_kind == 'sendgrid' || feedback_kind == 'mailgun'",
        "feedback_topic": "feedback_kind == 'ses'",
    }

    class Media:
        css = {"all": ("outgoing/outgoing.css",)}
    fieldsets = (
        ("Connection", {"fields": ("name", "company", "host", "port", "security",
                                   "verify_certificate")}),
        ("Authentication", {"fields": (
            "auth", "username", "password", "oauth_provider", "oauth_client_id",
            "oauth_client_secret", "oauth_refresh_token", "client_certificate", "client_key",
            "forget_secrets")}),
        ("Sending rules", {"fields": (
            "from_filter", "sequence", "purpose", "rate_per_minute", "rate_per_hour",
            "rate_per_day", "max_per_connection", "max_connections", "max_message_size",
            "active")}),
        ("Provider feedback webhook", {"fields": ("feedback_kind", "feedback_secret",
                                                  "feedback_topic", "feedback_webhook")}),
        ("Status", {"fields": ("test_result", "circuit_state")}),
    )

    def save_model(self, request, obj, form, change):
        server_services.save_server(obj, actor=request.user,
                                    forget_secrets=form.cleaned_data.get("forget_secrets", False))

    def delete_model(self, request, obj):
        server_services.delete_server(obj, actor=request.user)

    @display(description="Server")
    def address(self, obj: MailServer) -> str:
        return f"{obj.host}:{obj.port}"

    @display(description="Circuit")
    def circuit(self, obj: MailServer) -> str:
        return _circuit_words(obj, short=True)

    @display(description="Last connection test")
    def test_result(self, obj: MailServer) -> str:
        if obj.tested_at is None:
            return "Not tested yet. Save the server, then use Test connection."
        size = (f" The server accepts messages up to {_size(obj.announced_size_limit)}."
                if obj.announced_size_limit else "")
        outcome = "Passed" if obj.test_status == MailServer.Status.OK else "Failed"
        return format_html("{} on {}: {}{}", outcome,
                           timezone.localtime(obj.tested_at).strftime("%d %b %Y %H:%M"),
                           obj.test_message, size)

    @display(description="Circuit breaker")
    def circuit_state(self, obj: MailServer) -> str:
        return _circuit_words(obj)

    @display(description="Webhook address")
    def feedback_webhook(self, obj: MailServer | None) -> str:
        if obj is None or not obj.pk:
            return "Save the server to get its webhook address."
        if obj.feedback_kind == FeedbackKind.NONE:
            return "Choose a provider above and save: the address to paste appears here."
        events = FeedbackEvent.objects.filter(server=obj)
        unmatched = events.filter(outcome=FeedbackEvent.Outcome.UNMATCHED).count()
        return format_html(
            '<code class="select-all webhook-address">{}</code><br>{}<br>Events received: {} '
            "({} about mail Mailroom could not find).",
            feedback_config.webhook_url(obj), feedback_config.HELP[obj.feedback_kind],
            events.count(), unmatched)

    def run_test(self, request, server: MailServer) -> bool:
        try:
            report = server_services.run_connection_test(server, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, f"{server}: {error_text(exc)}", messages.ERROR)
            return False
        if report.ok:
            size = (f" It accepts messages up to {_size(report.size_limit)}."
                    if report.size_limit else "")
            self.message_user(request, f"{server}: connection test passed. "
                                       f"{server.test_message}{size}", messages.SUCCESS)
        else:
            self.message_user(request, f"{server}: connection test failed — "
                                       f"{server.test_message}", messages.ERROR)
        return bool(report.ok)


def _circuit_words(server: MailServer, short: bool = False) -> str:
    now = timezone.now()
    if server.circuit_open_until and server.circuit_open_until > now:
        until = timezone.localtime(server.circuit_open_until).strftime("%H:%M")
        if short:
            return f"Paused until {until}"
        return (f"Paused until {until} after {server.consecutive_failures} failed connections: "
                f"mail fails over to the next matching server. Last error: "
                f"{server.last_error or '—'}")
    if server.consecutive_failures:
        if short:
            return f"{server.consecutive_failures} recent failure(s)"
        return (f"Working, with {server.consecutive_failures} recent failed connection(s). "
                f"Last error: {server.last_error or '—'}")
    return "Closed" if short else "Closed: the server is used normally."


def _size(size: int | None) -> str:
    if not size:
        return "—"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


# --------------------------------------------------------------------------- DKIM keys
@admin.register(DkimKey)
class DkimKeyAdmin(CompanyScopedAdmin):
    list_display = ("dns_name", "domain", "selector", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("domain", "selector")
    fields = ("domain", "selector", "dns_record", "active", "created_at")
    readonly_fields = ("domain", "selector", "dns_record", "created_at")

    class Media:
        css = {"all": ("outgoing/outgoing.css",)}

    def has_delete_permission(self, request, obj=None):
        return request.user.has_role(Role.MAIL_MANAGER) and super(
            CompanyScopedAdmin, self).has_delete_permission(request, obj)

    @display(description="DNS record to publish")
    def dns_record(self, obj: DkimKey) -> str:
        from django.template.loader import render_to_string

        chunks = [obj.dns_txt[i:i + 255] for i in range(0, len(obj.dns_txt), 255)]
        quoted = " ".join(f'"{chunk}"' for chunk in chunks)
        return render_to_string("outgoing/admin/dkim_record.html", {
            "key": obj, "zone_line": f"{obj.dns_name}. IN TXT ( {quoted} )"})

    def add_view(self, request, form_url="", extra_context=None):
        """Only a domain and a selector are asked; the key pair is generated."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        company = request.user.current_company
        form = DkimKeyAddForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                key = server_services.generate_dkim_key(
                    company, form.cleaned_data["domain"], form.cleaned_data["selector"],
                    actor=request.user)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(request, f"Key generated for {key.domain}. Publish the TXT "
                                           "record below, then sign with it.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:outgoing_dkimkey_change",
                                                    args=[key.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": "Generate a DKIM key", "form": form,
            "company": company, "has_view_permission": True,
        }
        return render(request, "outgoing/admin/dkim_add.html", context)

    def save_model(self, request, obj, form, change):
        server_services.set_dkim_key_active(obj, obj.active, actor=request.user)

    def delete_model(self, request, obj):
        server_services.delete_dkim_key(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for key in queryset:
            server_services.delete_dkim_key(key, actor=request.user)


# --------------------------------------------------------------------------- the email hub
class StateFilter(ChoicesDropdownFilter):
    title = "state"


class ServerFilter(DropdownFilter):
    title = "server"
    parameter_name = "server"

    def lookups(self, request, model_admin):
        servers = MailServer.objects.for_current_company(request.user).order_by("name")
        return [(str(s.pk), s.name) for s in servers]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isascii() and value.isdigit():  # "²" is a digit, not a number
            return queryset.filter(Q(used_server_id=value) | Q(server_id=value, used_server=None))
        return queryset


class RecordTypeFilter(DropdownFilter):
    title = "record type"
    parameter_name = "record_type"

    def lookups(self, request, model_admin):
        from django.contrib.contenttypes.models import ContentType

        ids = (OutgoingMail.objects.for_current_company(request.user)
               .exclude(content_type=None).values_list("content_type", flat=True).distinct())
        types = ContentType.objects.filter(pk__in=set(ids))
        return sorted(((str(t.pk), t.name.capitalize()) for t in types), key=lambda x: x[1])

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(content_type=None)
        if value and value.isdigit():
            return queryset.filter(content_type_id=value)
        return queryset


class CreatedFilter(RangeDateFilter):
    """Days in the user's time zone, both ends included."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "date"

    def queryset(self, request, queryset):
        from unfold.utils import parse_date_str

        filters = {}
        start = self.used_parameters.get(f"{self.parameter_name}_from")
        end = self.used_parameters.get(f"{self.parameter_name}_to")
        try:
            if start:
                filters[f"{self.parameter_name}__date__gte"] = parse_date_str(start)
            if end:
                filters[f"{self.parameter_name}__date__lte"] = parse_date_str(end)
            return queryset.filter(**filters)
        except (ValueError, ValidationError):
            return None


class UncertainFilter(BooleanRadioFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "possible duplicate (worker stopped mid-send)"


class FailureFilter(ChoicesDropdownFilter):
    title = "failure type"


class PriorityFilter(ChoicesDropdownFilter):
    title = "priority"


@admin.register(OutgoingMail)
class OutgoingMailAdmin(CompanyScopedAdmin):
    list_display = ("subject_line", "to_line", "state_chip", "failure", "priority_chip",
                    "record_link", "server_name", "created_at")
    list_display_links = ("subject_line",)
    list_filter = (
        ("state", StateFilter), ServerFilter, ("created_at", CreatedFilter), RecordTypeFilter,
        ("failure_type", FailureFilter), ("priority", PriorityFilter),
        ("was_uncertain", UncertainFilter),
    )
    list_filter_submit = True
    search_fields = ("subject", "recipients__address", "message_id")
    search_help_text = "Search by recipient address, subject or Message-ID."
    list_per_page = 50
    show_full_result_count = False
    actions = ["send_now_selected", "retry_selected", "cancel_selected"]
    list_before_template = "outgoing/admin/hub_counts.html"

    class Media:
        css = {"all": ("outgoing/outgoing.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "used_server", "server", "content_type").prefetch_related("recipients", "record")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only; the actions below are the only way to act on a mail

    def has_delete_permission(self, request, obj=None):
        return False  # the outbox is the record of what was sent

    def has_manage_permission(self, request, obj=None):
        return is_mail_manager(request.user)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Email hub",
                         "hub_counts": state_counts(request.user)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The read-only detail page (the admin form is not used for mails)."""
        mail = self.get_object(request, unquote(object_id))
        if mail is None:
            raise Http404("No such email.")
        if not self.has_view_permission(request, mail):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": mail.subject or "(no subject)", "has_view_permission": True,
            **mail_detail_context(mail, request.user),
        }
        return TemplateResponse(request, "outgoing/admin/mail_detail.html", context)

    # list columns
    @display(description="Subject", ordering="subject")
    def subject_line(self, obj: OutgoingMail) -> str:
        subject = obj.subject or "(no subject)"
        if obj.was_uncertain or obj.state == OutgoingMail.State.UNCERTAIN:
            return format_html('{} <span title="May have been delivered twice" '
                               'aria-label="May have been delivered twice">⚠</span>', subject)
        return subject

    @display(description="To")
    def to_line(self, obj: OutgoingMail) -> str:
        recipients = [r for r in obj.recipients.all() if r.kind != "bcc"] or list(
            obj.recipients.all())
        first = recipients[0].address if recipients else "—"
        more = len(obj.recipients.all()) - 1
        return f"{first} +{more}" if more > 0 else first

    @display(description="State", label=MAIL_STATE_COLOURS)
    def state_chip(self, obj: OutgoingMail):
        return obj.state, obj.get_state_display()

    @display(description="Why not sent")
    def failure(self, obj: OutgoingMail) -> str:
        summary = failure_summary(obj)
        if summary is None:
            return "—"
        short, full = summary
        return format_html('<span class="mr-failure" title="{}">{}</span>', full, short)

    @display(description="Priority", ordering="priority")
    def priority_chip(self, obj: OutgoingMail) -> str:
        return obj.get_priority_display()

    @display(description="Record")
    def record_link(self, obj: OutgoingMail) -> str:
        link = record_link(obj)
        if link is None:
            return "—"
        url, label = link
        return format_html('<a class="text-primary-600" href="{}">{}</a>', url, label) \
            if url else label

    @display(description="Server")
    def server_name(self, obj: OutgoingMail) -> str:
        server = obj.used_server or obj.server
        return server.name if server else "—"

    # bulk actions
    def _act(self, request, queryset, service, done: str, not_done: str) -> None:
        mails = list(queryset)
        try:
            count = service(mails, actor=request.user)
        except PermissionDenied as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
            return
        if count:
            self.message_user(request, f"{done}: {count}.", messages.SUCCESS)
        skipped = len(mails) - count
        if skipped:
            self.message_user(request, f"{skipped} {not_done}", messages.WARNING)

    @admin.action(description="Send selected now", permissions=["manage"])
    def send_now_selected(self, request, queryset):
        self._act(request, queryset, services.send_now, "Sent at the next worker pass",
                  "skipped: only waiting mails can be sent now.")

    @admin.action(description="Retry selected", permissions=["manage"])
    def retry_selected(self, request, queryset):
        self._act(request, queryset, services.retry, "Queued again",
                  "skipped: only failed, deferred, uncertain or cancelled mails can be retried.")

    @admin.action(description="Cancel selected", permissions=["manage"])
    def cancel_selected(self, request, queryset):
        """Asks first: the confirmation page posts the same action back with confirm=yes."""
        if request.POST.get("confirm") != "yes":
            mails = list(queryset.prefetch_related("recipients"))
            return cancel_confirmation(request, mails, single=False,
                                       selected=[str(m.pk) for m in mails])
        self._act(request, queryset, services.cancel, "Cancelled",
                  "skipped: mails already sent, being sent or cancelled cannot be cancelled.")


navigation.add_model("Email", "Email hub", "outbox", OutgoingMail)
navigation.add("Email", "Email dashboard", "monitoring", "outgoing:dashboard",
               "outgoing.view_outgoingmail")
navigation.add_model("Email", "Outgoing mail servers", "dns", MailServer)
navigation.add_model("Email", "DKIM keys", "key", DkimKey)
