"""Fetching from a real Dovecot on loopback: nothing lost, nothing stored twice, nothing
acknowledged before it is stored, and every failure in plain words.

The Dovecot harness (tests/incoming/dovecot.py) starts once per session; each test gets an
empty INBOX.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mailroom.incoming import fetchers
from mailroom.incoming.fetchers import imap as imap_fetcher
from mailroom.incoming.models import InboundMail, IncomingServer
from mailroom.incoming.tasks import claim_server, fetch_server, fetcher_step
from tests.incoming.dovecot import CuttingProxy, Dovecot, available

pytestmark = [
    pytest.mark.skipif(not available(), reason="Dovecot is not installed (scripts/test "
                                               "installs dovecot-imapd and dovecot-pop3d)"),
]


@pytest.fixture(scope="session")
def _dovecot_server():
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
def dovecot(_dovecot_server):
    _dovecot_server.reset()
    return _dovecot_server


@pytest.fixture
def make_server(acme, dovecot):
    def make(**fields) -> IncomingServer:
        kind = fields.get("kind", IncomingServer.Kind.IMAP)
        security = fields.get("security", IncomingServer.Security.SSL)
        port = {("imap", "ssl"): "imaps", ("imap", "starttls"): "imap",
                ("imap", "none"): "imap", ("pop3", "ssl"): "pops",
                ("pop3", "starttls"): "pop3", ("pop3", "none"): "pop3"}.get((kind, security))
        values = dict(company=acme, name=f"Box {IncomingServer.objects.count() + 1}",
                      kind=kind, host="127.0.0.1", port=dovecot.ports.get(port),
                      security=security, username=dovecot.user, password=dovecot.password,
                      ca_certificate=dovecot.ca_pem)
        values.update(fields)
        return IncomingServer.objects.create(**values)

    return make


def message(n: int, size: int = 0) -> bytes:
    body = f"Message number {n}.\r\n" + ("x" * 76 + "\r\n") * (size // 78)
    return (f"From: Sender {n} <sender{n}@client.example>\r\nTo: sales@acme.test\r\n"
            f"Subject: Test {n}\r\nMessage-ID: <msg-{n}@client.example>\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}").encode()


def deliver(dovecot, count: int, start: int = 1) -> None:
    for n in range(start, start + count):
        dovecot.deliver(message(n))


def stored_subjects(server) -> list[bytes]:
    from mailroom.incoming.services import raw_bytes

    return sorted(raw_bytes(m).split(b"Subject: ")[1].split(b"\r\n")[0]
                  for m in InboundMail.objects.filter(server=server))


# --- IMAP -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_imaps_fetch_stores_then_marks_read_and_a_rerun_stores_nothing(dovecot, make_server):
    deliver(dovecot, 5)
    server = make_server()
    assert fetchers.test_connection(server) == "Connected; INBOX has 5 messages (5 unread)."

    result = fetch_server(server)

    assert (result.stored, result.acknowledged, result.problems) == (5, 5, "")
    mails = InboundMail.objects.filter(server=server)
    assert [m.source for m in mails] == ["imap"] * 5
    assert stored_subjects(server) == [b"Test 1", b"Test 2", b"Test 3", b"Test 4", b"Test 5"]
    assert {m.source_key.rsplit(":", 1)[1] for m in mails} == {"1", "2", "3", "4", "5"}
    assert dovecot.count_unseen() == 0 and dovecot.count() == 5
    server.refresh_from_db()
    assert (server.last_uid, server.status, server.last_fetch_count) == (5, "ok", 5)
    assert server.uidvalidity

    assert fetchers.fetch(server).stored == 0
    deliver(dovecot, 1, start=6)
    assert fetchers.fetch(server).stored == 1
    assert InboundMail.objects.filter(server=server).count() == 6


@pytest.mark.django_db
def test_starttls(dovecot, make_server):
    deliver(dovecot, 2)
    server = make_server(security=IncomingServer.Security.STARTTLS)
    assert fetchers.fetch(server).stored == 2
    assert dovecot.count_unseen() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("offer_move", [True, False])
def test_move_to_a_folder(dovecot, make_server, monkeypatch, offer_move):
    dovecot.create_folder("Archive")
    deliver(dovecot, 3)
    if not offer_move:  # a server without MOVE: COPY, \Deleted, UID EXPUNGE
        real = imap_fetcher.IMAPClient.has_capability
        monkeypatch.setattr(imap_fetcher.IMAPClient, "has_capability",
                            lambda self, cap: cap.upper() != "MOVE" and real(self, cap))
    server = make_server(move_to="Archive")
    assert fetchers.fetch(server).stored == 3
    assert dovecot.count() == 0
    assert dovecot.count("Archive") == 3


@pytest.mark.django_db
def test_a_missing_folder_is_said_plainly(dovecot, make_server):
    server = make_server(folder="Nowhere")
    with pytest.raises(fetchers.FetchError, match="The folder “Nowhere” does not exist"):
        fetchers.test_connection(server)
    server = make_server(move_to="Archive")
    assert "“Archive” (where fetched mail is moved) does not exist" in fetchers.fetch(
        server).error


@pytest.mark.django_db
def test_wrong_password_fails_in_plain_words_and_stores_nothing(dovecot, make_server):
    deliver(dovecot, 2)
    server = make_server(password="nope")
    fetch_server(server)
    server.refresh_from_db()
    assert server.status == IncomingServer.Status.FAILING
    assert "refused the login" in server.last_error
    assert "wrong user name or password" in server.last_error
    assert not InboundMail.objects.exists()
    assert dovecot.count_unseen() == 2
    with pytest.raises(fetchers.FetchError, match="wrong user name or password"):
        fetchers.test_connection(server)


@pytest.mark.django_db
def test_a_certificate_from_an_unknown_ca_is_refused_until_its_ca_is_given(dovecot,
                                                                          make_server):
    deliver(dovecot, 1)
    server = make_server(ca_certificate="")
    error = fetchers.fetch(server).error
    assert "certificate of 127.0.0.1" in error and "does not verify" in error
    with pytest.raises(fetchers.FetchError, match="does not verify"):
        fetchers.test_connection(server)
    assert not InboundMail.objects.exists()

    server.ca_certificate = dovecot.ca_pem
    assert fetchers.fetch(server).stored == 1

    unchecked = make_server(ca_certificate="", verify_certificate=False)
    assert fetchers.test_connection(unchecked).startswith("Connected;")


@pytest.mark.django_db
@pytest.mark.parametrize("cut", ["second STORE", "mid FETCH"])
def test_a_connection_dropped_mid_fetch_loses_and_duplicates_nothing(dovecot, make_server,
                                                                     monkeypatch, cut):
    monkeypatch.setattr(imap_fetcher, "BATCH", 2)
    for n in range(1, 6):
        dovecot.deliver(message(n, size=3000))
    if cut == "second STORE":  # messages 3 and 4 are stored but not yet marked read
        proxy = CuttingProxy(dovecot.ports["imap"], cut_on=(b"UID STORE", 2))
    else:  # the server stops talking half-way through the bodies of the second batch
        proxy = CuttingProxy(dovecot.ports["imap"], cut_after_bytes=9000)
    try:
        server = make_server(security=IncomingServer.Security.NONE, port=proxy.port)
        first = fetch_server(server)
        assert proxy.cuts == 1
        assert "closed unexpectedly" in first.error
        server.refresh_from_db()
        assert server.status == "failing"
        assert 0 < dovecot.count_unseen() < 5

        second = fetch_server(server)
        assert second.problems == ""
        assert first.stored + second.stored == 5
    finally:
        proxy.close()
    assert InboundMail.objects.filter(server=server).count() == 5
    assert stored_subjects(server) == [f"Test {n}".encode() for n in range(1, 6)]
    assert dovecot.count_unseen() == 0


@pytest.mark.django_db
def test_a_new_uidvalidity_does_not_store_known_messages_again(dovecot, make_server):
    deliver(dovecot, 3)
    server = make_server()
    assert fetchers.fetch(server).stored == 3
    server.refresh_from_db()
    old = server.uidvalidity

    dovecot.change_uidvalidity()  # UIDs from 1 again, everything unread again
    deliver(dovecot, 1, start=4)
    result = fetchers.fetch(server)

    assert (result.stored, result.duplicates) == (1, 3)
    server.refresh_from_db()
    assert server.uidvalidity != old and server.last_uid == 4
    assert InboundMail.objects.filter(server=server).count() == 4
    assert dovecot.count_unseen() == 0


@pytest.mark.django_db
def test_a_message_over_the_size_limit_stays_on_the_server_and_is_reported_once(
        dovecot, make_server, settings):
    settings.MAILROOM_INBOUND_MAX_BYTES = 10_000
    dovecot.deliver(message(1))
    dovecot.deliver(message(2, size=20_000))
    dovecot.deliver(message(3))
    server = make_server()

    fetch_server(server)

    server.refresh_from_db()
    assert server.status == "failing"
    assert "over the size limit of 10,000 bytes" in server.last_error
    assert f"imap:{server.pk}:{server.uidvalidity}:2 (" in server.last_error
    assert stored_subjects(server) == [b"Test 1", b"Test 3"]
    assert dovecot.count_unseen() == 1  # left on the server, unread

    fetch_server(server)  # later runs skip it silently
    server.refresh_from_db()
    assert (server.status, server.last_error) == ("ok", "")
    assert dovecot.count_unseen() == 1


# --- POP3 -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_pop3_over_ssl_deletes_only_what_was_stored(dovecot, make_server, monkeypatch):
    deliver(dovecot, 3)
    server = make_server(kind=IncomingServer.Kind.POP3)
    assert fetchers.test_connection(server) == ("Connected; the mailbox has 3 messages "
                                                "waiting.")
    # storage fails on the second message: nothing is deleted (no QUIT), the first is kept
    from mailroom.incoming import services

    real_accept, calls = services.accept, []

    def failing_accept(raw, **kwargs):
        calls.append(kwargs["source_key"])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_accept(raw, **kwargs)

    monkeypatch.setattr(services, "accept", failing_accept)
    result = fetchers.fetch(server)
    assert "No space left on device" in result.error
    assert dovecot.count() == 3
    assert InboundMail.objects.filter(server=server).count() == 1

    monkeypatch.setattr(services, "accept", real_accept)
    result = fetchers.fetch(server)
    assert (result.stored, result.duplicates, result.error) == (2, 1, "")
    assert dovecot.count() == 0
    mails = InboundMail.objects.filter(server=server)
    assert {m.source for m in mails} == {"pop3"}
    assert stored_subjects(server) == [b"Test 1", b"Test 2", b"Test 3"]
    assert all(m.source_key.startswith(f"pop3:{server.pk}:") for m in mails)


@pytest.mark.django_db
def test_pop3_dropped_before_quit_stores_nothing_twice(dovecot, make_server):
    deliver(dovecot, 3)
    proxy = CuttingProxy(dovecot.ports["pop3"], cut_on=(b"QUIT", 1))
    try:
        server = make_server(kind=IncomingServer.Kind.POP3,
                             security=IncomingServer.Security.NONE, port=proxy.port)
        first = fetchers.fetch(server)
        assert first.stored == 3 and "closed unexpectedly" in first.error
        assert dovecot.count() == 3  # DELE never committed

        second = fetchers.fetch(server)
        assert (second.stored, second.duplicates, second.error) == (0, 3, "")
    finally:
        proxy.close()
    assert dovecot.count() == 0
    assert InboundMail.objects.filter(server=server).count() == 3


@pytest.mark.django_db
def test_pop3_starttls(dovecot, make_server):
    deliver(dovecot, 1)
    server = make_server(kind=IncomingServer.Kind.POP3,
                         security=IncomingServer.Security.STARTTLS)
    assert fetchers.fetch(server).stored == 1
    assert dovecot.count() == 0


# --- maildir --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_maildir_reads_new_and_unread_and_marks_them_seen(acme, tmp_path):
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1.a.host").write_bytes(message(1))
    (root / "cur" / "2.b.host:2,F").write_bytes(message(2))  # flagged, unread
    (root / "cur" / "3.c.host:2,S").write_bytes(message(3))  # already read
    server = IncomingServer.objects.create(company=acme, name="Local", kind="maildir",
                                           folder=str(root))
    assert fetchers.test_connection(server) == ("Found the maildir; it has 3 messages "
                                                "(2 unread).")

    result = fetchers.fetch(server)

    assert (result.stored, result.acknowledged) == (2, 2)
    assert sorted(p.name for p in (root / "cur").iterdir()) == [
        "1.a.host:2,S", "2.b.host:2,FS", "3.c.host:2,S"]
    assert not list((root / "new").iterdir())
    assert sorted(InboundMail.objects.values_list("source_key", flat=True)) == [
        f"maildir:{server.pk}:1.a.host", f"maildir:{server.pk}:2.b.host"]
    assert fetchers.fetch(server).stored == 0

    missing = IncomingServer.objects.create(company=acme, name="Gone", kind="maildir",
                                            folder=str(tmp_path / "nope"))
    assert "does not exist" in fetchers.fetch(missing).error


# --- failures, notices and the worker ---------------------------------------------------------

@pytest.mark.django_db
def test_a_failing_mailbox_notifies_the_mail_managers_once_then_once_when_fixed(
        dovecot, make_server, mia):
    from mailroom.outgoing.models import OutgoingMail
    from mailroom.routing.models import AliasDomain

    AliasDomain.objects.create(company=mia.current_company, name="acme.example")
    mia.email = "mia@acme.example"  # .test is a reserved name the outbox refuses
    mia.save()
    server = make_server(password="wrong")
    for _ in range(4):
        fetch_server(server)
    server.refresh_from_db()
    assert server.consecutive_failures == 4 and server.failure_notified
    notices = list(OutgoingMail.objects.all())
    assert len(notices) == 1
    assert "cannot fetch mail" in notices[0].subject
    assert mia.email in {r.address for r in notices[0].recipients.all()}

    server.password = dovecot.password
    server.save()
    deliver(dovecot, 1)
    fetch_server(server)
    server.refresh_from_db()
    assert (server.status, server.consecutive_failures, server.failure_notified) == (
        "ok", 0, False)
    assert OutgoingMail.objects.count() == 2
    assert "again" in OutgoingMail.objects.order_by("-id").first().subject


@pytest.mark.django_db
def test_the_fetcher_step_claims_one_due_server(dovecot, make_server):
    deliver(dovecot, 2)
    later = timezone.now() + timedelta(hours=1)
    make_server(name="Not due", next_fetch_at=later)
    make_server(name="Inactive", active=False)
    make_server(name="Leased", lease_owner="other", lease_expires_at=later)
    due = make_server(name="Due")

    assert fetcher_step("worker-1") is True
    due.refresh_from_db()
    assert (due.status, due.last_fetch_count, due.lease_owner) == ("ok", 2, "")
    assert due.next_fetch_at > timezone.now()
    assert InboundMail.objects.filter(server=due).count() == 2
    assert fetcher_step("worker-1") is False
    assert claim_server("worker-2") is None


@pytest.mark.django_db
def test_xoauth2_tokens_for_a_mailbox_are_refreshed_and_stored(acme, settings):
    from mailroom.core import oauth
    from tests.outgoing.fake_oauth import FakeTokenEndpoint

    fake = FakeTokenEndpoint(rotate_google=True).start()
    try:
        settings.MAILROOM_OAUTH_TOKEN_URLS = fake.urls
        server = IncomingServer.objects.create(
            company=acme, name="Gmail", host="imap.gmail.com", auth="xoauth2",
            username="sales@acme.test", oauth_provider="google", oauth_client_id="client-123",
            oauth_client_secret="secret-456", oauth_refresh_token="rt-0")
        assert oauth.access_token(server) == "at-1"
        stored = IncomingServer.objects.get(pk=server.pk)
        assert (stored.oauth_access_token, stored.oauth_refresh_token) == ("at-1", "rt-1")
        assert oauth.access_token(stored) == "at-1"  # still valid: no new request
        assert len(fake.requests) == 1
    finally:
        fake.stop()


@pytest.mark.django_db
def test_unreachable_and_silent_servers_are_said_plainly(acme, monkeypatch):
    import socket

    from mailroom.incoming.fetchers import pop3 as pop3_fetcher

    monkeypatch.setattr(imap_fetcher, "TIMEOUT", 0.3)
    monkeypatch.setattr(pop3_fetcher, "TIMEOUT", 0.3)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never says hello
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        for kind in ("imap", "pop3"):
            server = IncomingServer(company=acme, name=kind, kind=kind, host="127.0.0.1",
                                    security="none", username="u", password="p",
                                    port=silent.getsockname()[1])
            assert "did not answer in time (timeout)" in fetchers.fetch(server).error
            server.port = closed_port
            with pytest.raises(fetchers.FetchError, match="Cannot connect to 127.0.0.1:"):
                fetchers.test_connection(server)
    finally:
        silent.close()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["imap", "pop3"])
def test_xoauth2_login(dovecot, make_server, kind):
    deliver(dovecot, 1)
    server = make_server(kind=kind, auth="xoauth2", password="", oauth_provider="google",
                         oauth_client_id="client-123", oauth_client_secret="secret-456",
                         oauth_access_token="valid-access-token",
                         oauth_token_expires_at=timezone.now() + timedelta(hours=1))
    assert fetchers.fetch(server).stored == 1

    server.oauth_access_token = "revoked-token"
    assert "refused the login" in fetchers.fetch(server).error
