"""Incoming screens: mailboxes to fetch (with Test and Fetch now), the inbound log and its
quarantine. Every write goes through `incoming.services`; the log itself is read-only and
its only action, Reprocess, is for Mail Managers (the service checks)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display

from mailroom.core import navigation
from mailroom.core.admin_actions import error_text
from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.server_admin import ServerAdmin
from mailroom.incoming import intake, services
from mailroom.incoming.forms import IncomingServerForm
from mailroom.incoming.models import InboundMail, IncomingServer
from mailroom.incoming.views import (
    DECISION_COLOURS,
    STATE_COLOURS,
    detail_context,
    record_link,
)
from mailroom.outgoing.admin import CreatedFilter
from mailroom.routing.models import Alias, AliasDomain, AllowedSender

QUARANTINE_QUERY = "state__exact=quarantined"


# --------------------------------------------------------------------------- servers
@admin.register(IncomingServer)
class IncomingServerAdmin(ServerAdmin):
    form = IncomingServerForm
    new_server_fieldsets = 4
    list_display = ("name", "kind", "host", "folder", "status_chip", "last_fetch_at",
                    "last_fetch_count", "error_line", "active")
    list_display_links = ("name",)
    list_filter = ("active", "kind", "status")
    search_fields = ("name", "host", "username", "folder")
    readonly_fields = ("status", "last_fetch_at", "last_fetch_count", "last_error",
                       "next_fetch_at", "consecutive_failures")
    actions = ["test_selected", "fetch_now_selected"]
    change_form_outer_before_template = "incoming/admin/server_box.html"
    conditional_fields = {
        "host": "kind != 'maildir'", "port": "kind != 'maildir'",
        "security": "kind != 'maildir'", "verify_certificate": "kind != 'maildir'",
        "ca_certificate": "kind != 'maildir'", "auth": "kind != 'maildir'",
        "username": "kind != 'maildir'", "move_to": "kind == 'imap'",
        "password": "kind != 'maildir' && auth == 'password'",
        "oauth_provider": "kind != 'maildir' && auth == 'xoauth2'",
        "oauth_client_id": "kind != 'maildir' && auth == 'xoauth2'",
        "oauth_client_secret": "kind != 'maildir' && auth == 'xoauth2'",
        "oauth_refresh_token": "kind != 'maildir' && auth == 'xoauth2'",
    }
    fieldsets = (
        ("Connection", {"fields": ("name", "company", "kind", "host", "port", "security",
                                   "verify_certificate", "ca_certificate")}),
        ("Login", {"fields": ("auth", "username", "password", "oauth_provider",
                              "oauth_client_id", "oauth_client_secret", "oauth_refresh_token",
                              "forget_secrets")}),
        ("Mailbox", {"fields": ("folder", "move_to", "fetch_interval", "active")}),
        ("Processing", {"fields": ("fallback_record_type", "keep_attachments",
                                   "keep_original", "trusted_authserv_id")}),
        ("Status", {"fields": ("status", "last_fetch_at", "last_fetch_count", "last_error",
                               "next_fetch_at", "consecutive_failures")}),
    )

    class Media:
        css = {"all": ("outgoing/outgoing.css",)}

    def has_test_permission(self, request, obj=None):
        return request.user.has_perm("incoming.change_incomingserver")

    def save_model(self, request, obj, form, change):
        services.save_server(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_server(obj, actor=request.user)

    @display(description="Last error")
    def error_line(self, obj: IncomingServer) -> str:
        return Truncator(obj.last_error).chars(80) if obj.last_error else "—"

    # Test (from ServerAdmin) and Fetch now
    def server_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [path("<path:object_id>/fetch-now/", self.admin_site.admin_view(self.fetch_view),
                     name=f"{info[0]}_{info[1]}_fetch_now")]

    def fetch_view(self, request, object_id):
        return require_POST(self._fetch_view)(request, object_id)

    def _fetch_view(self, request, object_id):
        server = self.server_or_404(request, object_id)
        self._fetch_soon(request, server)
        return self.back_to(server)

    def run_test(self, request, server: IncomingServer) -> bool:
        try:
            ok, sentence = services.run_connection_test(server, actor=request.user)
        except PermissionDenied as exc:
            self.message_user(request, f"{server}: {error_text(exc)}", messages.ERROR)
            return False
        if ok:
            self.message_user(request, f"{server}: {sentence}", messages.SUCCESS)
        else:
            self.message_user(request, f"{server}: connection test failed — {sentence}",
                              messages.ERROR)
        return ok

    def _fetch_soon(self, request, server: IncomingServer) -> None:
        try:
            services.fetch_soon(server, actor=request.user)
        except (PermissionDenied, ValidationError) as exc:
            self.message_user(request, f"{server}: {error_text(exc)}", messages.ERROR)
            return
        note = "" if server.active else " It is inactive: activate it first."
        self.message_user(request, f"{server}: fetched at the next worker pass.{note}",
                          messages.SUCCESS if server.active else messages.WARNING)

    @admin.action(description="Fetch now", permissions=["test"])
    def fetch_now_selected(self, request, queryset):
        for server in queryset:
            self._fetch_soon(request, server)


# --------------------------------------------------------------------------- the inbound log
class StateFilter(ChoicesDropdownFilter):
    title = "state"


class DecisionFilter(ChoicesDropdownFilter):
    title = "decision"


class SourceFilter(ChoicesDropdownFilter):
    title = "source"


def _is_quarantine(request) -> bool:
    return request.GET.get("state__exact") == InboundMail.State.QUARANTINED


def _say_what_waits_in_the_spool(request) -> None:
    """Mail the gateway accepted on SQLite is in the intake spool until a router step takes
    it in (incoming.intake): say so above the log, and ask about the worker when it waits."""
    company_id = getattr(request.user, "current_company_id", None)
    if company_id is None:
        return
    count, oldest = intake.waiting(company_id)
    if not count:
        return
    text = (f"{count} message{'s' if count != 1 else ''} accepted by the gateway "
            f"{'are' if count != 1 else 'is'} waiting to be taken in by a worker")
    if oldest is not None and timezone.now() - oldest > timedelta(minutes=1):
        messages.warning(request, f"{text}, the oldest since "
                                  f"{timezone.localtime(oldest):%Y-%m-%d %H:%M}. Is "
                                  "`mailroom worker` running (with the router step)?")
    else:
        messages.info(request, f"{text}: they appear here within seconds.")


@admin.register(InboundMail)
class InboundMailAdmin(CompanyScopedAdmin):
    list_display = ("received_at", "source", "from_line", "to_line", "subject_line",
                    "decision_chip", "reason_line", "record_column", "state_chip")
    list_display_links = ("subject_line",)
    list_filter = (("state", StateFilter), ("decision", DecisionFilter),
                   ("source", SourceFilter), ("received_at", CreatedFilter))
    list_filter_submit = True
    search_fields = ("from_address", "envelope_from", "subject", "message_id")
    search_help_text = "Search by sender, subject or Message-ID."
    list_per_page = 50
    show_full_result_count = False
    actions = ["reprocess_selected"]

    class Media:
        css = {"all": ("outgoing/outgoing.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("content_type", "server") \
            .prefetch_related("record")

    def get_list_display(self, request):
        if _is_quarantine(request):
            return ("received_at", "source", "from_line", "subject_line", "error_line",
                    "attempts", "state_chip")
        return self.list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the log is a record of what happened; Reprocess is the only action

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reprocess_permission(self, request, obj=None):
        return request.user.has_perm("incoming.change_inboundmail")

    def changelist_view(self, request, extra_context=None):
        title = "Quarantine" if _is_quarantine(request) else "Inbound log"
        if not _is_quarantine(request):
            _say_what_waits_in_the_spool(request)
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        mail = self.get_object(request, unquote(object_id))
        if mail is None:
            raise Http404("No such message.")
        if not self.has_view_permission(request, mail):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": mail.subject or "(no subject)", "has_view_permission": True,
            **detail_context(mail, request.user),
        }
        return TemplateResponse(request, "incoming/admin/mail_detail.html", context)

    # list columns
    @display(description="From")
    def from_line(self, obj: InboundMail) -> str:
        return obj.from_address or obj.envelope_from or "—"

    @display(description="To (envelope)")
    def to_line(self, obj: InboundMail) -> str:
        to = list(obj.envelope_to or [])
        if not to:
            return "—"
        return f"{to[0]} +{len(to) - 1}" if len(to) > 1 else to[0]

    @display(description="Subject", ordering="subject")
    def subject_line(self, obj: InboundMail) -> str:
        return Truncator(obj.subject).chars(70) if obj.subject else "(no subject)"

    @display(description="Decision", label=DECISION_COLOURS)
    def decision_chip(self, obj: InboundMail):
        if not obj.decision:
            return "—"
        return obj.decision, obj.get_decision_display()

    @display(description="Reason")
    def reason_line(self, obj: InboundMail) -> str:
        return Truncator(obj.reason).chars(80) if obj.reason else "—"

    @display(description="Error")
    def error_line(self, obj: InboundMail) -> str:
        return Truncator(obj.error).chars(120) if obj.error else "—"

    @display(description="Record")
    def record_column(self, obj: InboundMail) -> str:
        link = record_link(obj)
        if link is None:
            return "—"
        url, label = link
        return format_html('<a class="text-primary-600" href="{}">{}</a>', url, label) \
            if url else label

    @display(description="State", label=STATE_COLOURS)
    def state_chip(self, obj: InboundMail):
        return obj.state, obj.get_state_display()

    @admin.action(description="Reprocess selected", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        mails = list(queryset)
        try:
            count = services.reprocess(mails, actor=request.user)
        except PermissionDenied as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
            return
        if count:
            self.message_user(request, f"Sent back to the router: {count} "
                                       f"message{'s' if count != 1 else ''}. They are routed "
                                       "again at the next worker pass.", messages.SUCCESS)
        skipped = len(mails) - count
        if skipped:
            self.message_user(request, f"{skipped} skipped: already waiting to be routed.",
                              messages.WARNING)


# --------------------------------------------------------------------------- the sidebar
GROUP = "Incoming mail"
navigation.add_model(GROUP, "Inbound log", "move_to_inbox", InboundMail)
navigation.add(GROUP, "Quarantine", "report", "admin:incoming_inboundmail_changelist",
               "incoming.view_inboundmail", query=QUARANTINE_QUERY,
               badge="mailroom.incoming.views.quarantine_badge")
navigation.add(GROUP, "Test an address", "science", "incoming:test_address",
               "routing.view_alias")
navigation.add_model(GROUP, "Incoming servers", "dns", IncomingServer)
navigation.add_model(GROUP, "Aliases", "alternate_email", Alias)
navigation.add_model(GROUP, "Alias domains", "domain", AliasDomain)
navigation.add_model(GROUP, "Allowed senders", "verified_user", AllowedSender)
