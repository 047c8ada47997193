"""Telling the Mail Managers that a mailbox fails (once), and that it works again (once)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from mailroom.core.roles import Role
from mailroom.core.services import audit
from mailroom.incoming.models import IncomingServer
from mailroom.outgoing.services import enqueue
from mailroom.routing.models import AliasDomain

log = logging.getLogger("mailroom.incoming")


def system_sender(company) -> str:
    """The company's notification address: the first alias domain's default sender, else the
    company address, else "" (then notices go to the log and the audit trail only)."""
    domain = AliasDomain.objects.filter(company=company).order_by("sequence", "name").first()
    if domain is not None:
        return f"{company.name} <{domain.default_from_email}>"
    return company.email or ""


def mail_managers(company) -> list:
    users = get_user_model().objects.filter(
        Q(groups__name__in=[Role.MAIL_MANAGER.value, Role.ADMINISTRATOR.value])
        | Q(is_superuser=True), is_active=True, companies=company).exclude(email="").distinct()
    return list(users)


def notify_managers(server: IncomingServer, what: str) -> None:
    """`what` is "failing" or "recovered". Runs inside the caller's transaction."""
    link = f"{settings.BASE_URL}/admin/incoming/incomingserver/{server.pk}/change/"
    if what == "failing":
        subject = f"Mailroom cannot fetch mail from “{server.name}”"
        text = (f"The last {server.consecutive_failures} attempts to fetch mail from "
                f"“{server.name}” failed. The last error was:\n\n{server.last_error}\n\n"
                f"Mail stays on that server until this is fixed; nothing is lost. "
                f"Check the server settings and use Test: {link}\n\n"
                f"You will get one more message when it works again.")
    else:
        subject = f"Mailroom fetches mail from “{server.name}” again"
        text = f"Fetching from “{server.name}” works again.\n{link}"
    audit(f"incoming.server.{what}", actor=None, obj=server, company=server.company,
          after={"error": server.last_error})
    sender = system_sender(server.company)
    managers = mail_managers(server.company)
    if not sender or not managers:
        log.warning("incoming server %s is %s: %s (no sender or no Mail Manager to tell)",
                    server.pk, what, server.last_error)
        return
    enqueue(company=server.company, email_from=sender,
            to=[(u.get_full_name() or u.username, u.email) for u in managers],
            subject=subject, text=text, is_automatic=True, priority=0,
            idempotency_key=f"incoming-server-{server.pk}-{what}-{server.consecutive_failures}"
                            f"-{server.last_fetch_at:%Y%m%d%H%M%S}")
