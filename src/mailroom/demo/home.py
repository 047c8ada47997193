"""The Home page's demo hint: while the mail catcher's server is the current company's only
active outgoing server, say that nothing reaches anybody, where the mail can be read, and how
to configure a real server."""

from __future__ import annotations

from django.urls import reverse

from mailroom.chatter.dashboard import HomePanel, register_home_panel
from mailroom.demo.services import DEMO_SERVER_NAME, is_demo_server
from mailroom.demo.views import may_read, visible
from mailroom.outgoing.models import MailServer


def catcher_hint(request) -> dict | None:
    user = request.user
    servers = list(MailServer.objects.for_current_company(user).filter(active=True))
    if not servers or not all(is_demo_server(server) for server in servers):
        return None
    readable = may_read(user)
    return {
        "server_name": servers[0].name if len(servers) == 1 else DEMO_SERVER_NAME,
        "caught": visible(user).count() if readable else None,
        "caught_link": reverse("demo:caught_list") if readable else "",
        "can_configure": user.has_perm("outgoing.add_mailserver"),
        "add_server": reverse("admin:outgoing_mailserver_add"),
        "servers": reverse("admin:outgoing_mailserver_changelist"),
    }


def register() -> None:
    register_home_panel(HomePanel("demo_catcher", "demo/home_catcher.html", catcher_hint,
                                  position=5))
