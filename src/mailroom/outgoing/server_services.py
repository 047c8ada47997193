"""Services for outgoing servers and DKIM keys: the only writers of MailServer and DkimKey.

Mail Managers (and Administrators) configure them for their own companies. Every change is
audited with secrets masked (`core.services.snapshot` masks encrypted fields). Network I/O
(the connection test) happens outside any transaction; only its result is written.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.core.access import require
from mailroom.core.roles import Role
from mailroom.core.services import (
    audit,
    connection_test_action,
    require_connection_test_budget,
    snapshot,
)
from mailroom.lib import dkim
from mailroom.outgoing.feedback import config as feedback_config
from mailroom.outgoing.models import DkimKey, MailServer, Purpose
from mailroom.outgoing.smtp import probe

TEST_ACTION = connection_test_action("mailserver.test")

# A change to any of these means the last connection test no longer speaks for the server.
CONNECTION_FIELDS = (
    "host", "port", "security", "verify_certificate", "auth", "username", "password",
    "oauth_provider", "oauth_client_id", "oauth_client_secret", "oauth_refresh_token",
    "client_certificate", "client_key",
)
WORKER_FIELDS = ("consecutive_failures", "circuit_open_until", "last_error",
                 "oauth_access_token", "oauth_token_expires_at")
BULK_PURPOSES = (Purpose.BULK, Purpose.BOTH)
BULK_NEEDS_TEST = ("Bulk sending needs a passed connection test: save the server with Active "
                   "off, run Test connection, then activate it.")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# Mail Managers configure their own companies' servers and keys (actor None: the system).
_REFUSALS = {"denied": "Only Mail Managers can configure outgoing mail.",
             "elsewhere": "You cannot configure another company's mail."}


def _connection_changed(stored: MailServer, server: MailServer) -> bool:
    return any(getattr(stored, f) != getattr(server, f) for f in CONNECTION_FIELDS)


def _test_after_save(stored: MailServer | None, server: MailServer) -> str:
    """The test status the server will have once saved."""
    if stored is None or _connection_changed(stored, server):
        return MailServer.Status.NOT_TESTED
    return stored.test_status


def check_server(server: MailServer, stored: MailServer | None = None) -> None:
    """The rules a save must pass, as a ValidationError naming the field (forms call it too)."""
    if stored is None and server.pk:
        stored = MailServer.objects.filter(pk=server.pk).first()
    if (server.active and server.purpose in BULK_PURPOSES
            and _test_after_save(stored, server) != MailServer.Status.OK):
        raise ValidationError({"active": BULK_NEEDS_TEST})
    feedback_config.check(server, stored)


def save_server(server: MailServer, *, actor, forget_secrets: bool = False) -> MailServer:
    """Create or update a server.

    Secrets the caller did not set keep their stored value (the form leaves a blank password
    field untouched). Changing where or how the server connects resets the test to "not
    tested". A server that may send bulk mail is active only after its last test passed.
    `forget_secrets` erases every stored secret, the OAuth access token included.
    """
    require(actor, Role.MAIL_MANAGER, server, **_REFUSALS)
    with transaction.atomic():
        stored = None
        if server.pk:
            stored = MailServer.objects.select_for_update().filter(pk=server.pk).first()
            if stored is None:
                raise ValidationError("This server no longer exists.")
            if stored.company_id != server.company_id:
                require(actor, Role.MAIL_MANAGER, stored, **_REFUSALS)
        check_server(server, stored)
        if stored is None or _connection_changed(stored, server):
            server.test_status = MailServer.Status.NOT_TESTED
            server.tested_at = None
            server.test_message = ""
            server.announced_size_limit = None
        else:  # the test result is the tester's to write, not the form's
            for field in ("test_status", "tested_at", "test_message", "announced_size_limit"):
                setattr(server, field, getattr(stored, field))
        if stored is not None:  # written by the sender and the OAuth refresher, not by forms
            for field in WORKER_FIELDS:
                setattr(server, field, getattr(stored, field))
        entered = getattr(server, "_entered_secrets", None)
        if stored is not None and entered is not None and not forget_secrets:
            for field in MailServer.SECRET_FIELDS:
                if field not in entered:
                    setattr(server, field, getattr(stored, field))
        if forget_secrets:
            for field in MailServer.SECRET_FIELDS:
                setattr(server, field, "")
            server.oauth_token_expires_at = None
        server.full_clean(validate_unique=False, validate_constraints=False)
        if MailServer.objects.filter(company_id=server.company_id, name=server.name).exclude(
                pk=server.pk).exists():
            raise ValidationError({"name": "Another server of this company has that name."})
        before = snapshot(stored) if stored is not None else {}
        after = snapshot(server)
        for name in MailServer.SECRET_FIELDS:  # say that a secret changed, never its value
            old = getattr(stored, name) if stored is not None else ""
            new = getattr(server, name)
            if old != new:
                before[name] = "********" if old else ""
                after[name] = "******** (replaced)" if old and new else (
                    "********" if new else "")
        server.save()
        audit("mailserver.update" if stored else "mailserver.create", actor=actor, obj=server,
              before=before, after=after)
    return server


def delete_server(server: MailServer, *, actor) -> None:
    require(actor, Role.MAIL_MANAGER, server, **_REFUSALS)
    with transaction.atomic():
        audit("mailserver.delete", actor=actor, obj=server, before=snapshot(server))
        server.delete()


def run_connection_test(server: MailServer, *, actor, ssl_context=None):
    """Connect, negotiate TLS, authenticate, try MAIL FROM / RCPT TO / RSET without sending,
    and store the outcome on the server. Returns the transport's ConnectionReport."""
    require(actor, Role.MAIL_MANAGER, server, **_REFUSALS)
    require_connection_test_budget(actor, server)
    report = probe.test_connection(server, ssl_context=ssl_context)
    status = MailServer.Status.OK if report.ok else MailServer.Status.FAILING
    message = report.message or ("The connection test passed." if report.ok else
                                 "The connection test failed.")
    fields = {
        "test_status": status,
        "tested_at": timezone.now(),
        "test_message": message,
        "announced_size_limit": report.size_limit or None,
    }
    with transaction.atomic():
        MailServer.objects.filter(pk=server.pk).update(**fields)
        before = {"test_status": server.test_status}
        for name, value in fields.items():
            setattr(server, name, value)
        audit(TEST_ACTION, actor=actor, obj=server, before=before,
              after={"host": server.host, "port": server.port, "test_status": status,
                     "stage": getattr(report, "stage", ""), "test_message": message})
    return report


def _clean_domain(domain: str) -> str:
    domain = (domain or "").strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationError({"domain": "This is not a valid domain name."}) from exc
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(_LABEL.match(x) for x in labels):
        raise ValidationError({"domain": "Enter a domain such as example.com."})
    return domain


def _clean_selector(selector: str) -> str:
    selector = (selector or "").strip().lower()
    if not selector or len(selector) > 63 or not all(_LABEL.match(x)
                                                     for x in selector.split(".")):
        raise ValidationError({"selector": "Use letters, digits and hyphens (e.g. mailroom)."})
    return selector


def generate_dkim_key(company, domain: str, selector: str, *, actor,
                      bits: int = 2048) -> DkimKey:
    """Generate a key pair for `domain`; the private half is encrypted at rest and the TXT
    record to publish is kept on the row (`dns_name` / `dns_txt`)."""
    require(actor, Role.MAIL_MANAGER, company, **_REFUSALS)
    domain = _clean_domain(domain)
    selector = _clean_selector(selector)
    if DkimKey.objects.filter(company=company, domain=domain, selector=selector).exists():
        raise ValidationError({"selector": f"{selector}._domainkey.{domain} already has a key. "
                                           "Choose another selector to rotate keys."})
    private_pem, dns_txt = dkim.generate_key(bits=bits)
    if isinstance(private_pem, bytes):
        private_pem = private_pem.decode("ascii")
    try:
        with transaction.atomic():
            key = DkimKey.objects.create(company=company, domain=domain, selector=selector,
                                         private_key=private_pem, dns_txt=dns_txt)
            audit("dkimkey.create", actor=actor, obj=key, after=snapshot(key))
    except IntegrityError as exc:
        raise ValidationError({"selector": "That selector was just taken."}) from exc
    return key


def set_dkim_key_active(key: DkimKey, active: bool, *, actor) -> DkimKey:
    require(actor, Role.MAIL_MANAGER, key, **_REFUSALS)
    with transaction.atomic():
        before = {"active": DkimKey.objects.get(pk=key.pk).active}
        DkimKey.objects.filter(pk=key.pk).update(active=active)
        key.active = active
        audit("dkimkey.update", actor=actor, obj=key, before=before, after={"active": active})
    return key


def delete_dkim_key(key: DkimKey, *, actor) -> None:
    require(actor, Role.MAIL_MANAGER, key, **_REFUSALS)
    with transaction.atomic():
        audit("dkimkey.delete", actor=actor, obj=key, before=snapshot(key))
        key.delete()
