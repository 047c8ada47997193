"""The screens every mail server shares, outgoing or incoming: delete for Mail Managers only,
no "Forget stored secrets" on a server that has none yet, a POST-only Test connection button
that comes back to the change page, the same action on a list selection, and one status chip
in the one vocabulary of `core.mail_servers`.

A concrete admin sets `status_field` and `new_server_fieldsets` and implements
`run_test(request, server) -> bool` (its service call and the message the user reads).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from unfold.decorators import display

from mailroom.core.admin_base import CompanyScopedAdmin
from mailroom.core.mail_servers import STATUS_COLOURS, MailServerBase
from mailroom.core.roles import Role


class ServerAdmin(CompanyScopedAdmin):
    status_field = "status"
    new_server_fieldsets = 3  # fieldsets shown on Add: no status to report yet
    actions = ["test_selected"]

    def has_delete_permission(self, request, obj=None):
        return request.user.has_role(Role.MAIL_MANAGER) and super(
            CompanyScopedAdmin, self).has_delete_permission(request, obj)

    def has_test_permission(self, request, obj=None):
        return request.user.has_role(Role.MAIL_MANAGER)

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return self.fieldsets
        # a new server has no secrets to erase and no test or status to report
        return [(name, {**options, "fields": tuple(f for f in options["fields"]
                                                   if f != "forget_secrets")})
                for name, options in self.fieldsets[:self.new_server_fieldsets]]

    def delete_queryset(self, request, queryset):
        for server in queryset:
            self.delete_model(request, server)

    @display(description="Status", label=STATUS_COLOURS)
    def status_chip(self, obj: MailServerBase):
        return getattr(obj, self.status_field), obj._get_FIELD_display(
            obj._meta.get_field(self.status_field))

    # Test connection ---------------------------------------------------------------------
    def server_urls(self) -> list:
        """Extra per-server pages of a concrete admin (besides test/)."""
        return []

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view),
                 name=f"{info[0]}_{info[1]}_test"),
            *self.server_urls(),
            *super().get_urls(),
        ]

    def server_or_404(self, request, object_id) -> MailServerBase:
        server = self.get_object(request, unquote(object_id))
        if server is None:
            raise Http404("No such server.")
        if not self.has_test_permission(request, server):
            raise PermissionDenied
        return server

    def back_to(self, server: MailServerBase) -> HttpResponseRedirect:
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse(f"admin:{info[0]}_{info[1]}_change",
                                            args=[server.pk]))

    def test_view(self, request, object_id):
        """POST only: runs the test and comes back to the change page with the result."""
        return require_POST(self._test_view)(request, object_id)

    def _test_view(self, request, object_id):
        server = self.server_or_404(request, object_id)
        self.run_test(request, server)
        return self.back_to(server)

    def run_test(self, request, server: MailServerBase) -> bool:
        raise NotImplementedError

    @admin.action(description="Test connection of selected servers", permissions=["test"])
    def test_selected(self, request, queryset):
        for server in queryset:
            self.run_test(request, server)
