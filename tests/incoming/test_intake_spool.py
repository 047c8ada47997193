"""The intake spool (SQLite): the gateway's 250 waits for the spool file, never for the
database's write lock; the router step moves spooled mail into InboundMail exactly once."""

from __future__ import annotations

import logging
import smtplib
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import pytest
import time_machine

from mailroom.incoming import intake, services
from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.tasks import router_step
from tests import premigrated
from tests.api.support import api_as  # noqa: F401 - a fixture
from tests.core.test_processes import mailroom, mailroom_env
from tests.incoming.test_gateway import MESSAGE, as_sent, message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spool_on(settings, tmp_path):
    settings.MAILROOM_INTAKE_SPOOL = "on"
    settings.MAILROOM_INTAKE_SPOOL_PATH = tmp_path / "intake.sqlite3"
    return tmp_path / "intake.sqlite3"


def test_the_gateway_answers_from_the_spool_and_the_router_step_moves_and_routes(
        spool_on, domains, acme):
    with start_gateway() as gateway, smtplib.SMTP("127.0.0.1", gateway.smtp_port,
                                                  timeout=10) as client:
        client.ehlo("client.example")
        client.mail("ada@client.example")
        client.rcpt("sales@acme.test")
        code, reply = client.data(MESSAGE)
    assert (code, reply.decode()) == (250, "2.0.0 Ok: queued as s1")
    assert InboundMail.objects.count() == 0  # in the spool, committed, not yet moved
    assert intake.spool().count() == 1

    assert router_step("test-router") is True
    mail = InboundMail.objects.get()
    assert (mail.company, mail.source, mail.envelope_from, mail.envelope_to, mail.remote_ip,
            mail.helo) == (acme, "smtp", "ada@client.example", ["sales@acme.test"],
                           "127.0.0.1", "client.example")
    assert as_sent(mail) == MESSAGE  # the blob the spool row names
    assert mail.state == InboundMail.State.DONE and mail.decision == "created"
    assert mail.source_key.startswith("intake:") and mail.source_key.endswith(":1")
    assert intake.spool().count() == 0
    assert router_step("test-router") is False  # nothing left anywhere


def test_a_mover_that_died_before_emptying_the_spool_moves_nothing_twice(spool_on, domains,
                                                                        acme, globex):
    for n in range(3):
        services.accept_spooled(message(n), [(acme, ["sales@acme.test"]),
                                             (globex, ["sales@globex.test"])],
                                source="smtp", envelope_from="ada@client.example")
    before = sqlite3.connect(":memory:")
    intake.spool().db().backup(before)  # the spool as it was when the mover started
    assert intake.move() == 6
    moved = sorted(InboundMail.objects.values_list("source_key", flat=True))
    assert len(moved) == 6 and intake.spool().count() == 0

    before.backup(intake.spool().db())  # the mover died after its commit, before the delete
    assert intake.spool().count() == 6
    assert intake.move() == 6  # moved again: the database keeps the first copy of each
    assert sorted(InboundMail.objects.values_list("source_key", flat=True)) == moved
    assert intake.spool().count() == 0
    assert sorted(InboundMail.objects.values_list("company__name", flat=True)) == (
        sorted([acme.name] * 3 + [globex.name] * 3))


def test_a_mover_reads_the_spool_only_once_it_has_the_writers_turn(spool_on, domains, acme,
                                                                   monkeypatch):
    """Two routers that read the spool before waiting for the turn each moved the same rows
    (the second copy ignored): the rows are read in the turn, so the second mover finds
    them gone."""
    import contextlib

    services.accept_spooled(message(1), [(acme, ["sales@acme.test"])], source="smtp",
                            envelope_from="ada@client.example")
    events = []
    queue = intake.spool()
    reading = queue.waiting

    @contextlib.contextmanager
    def turn():
        events.append("turn taken")
        yield
        events.append("turn given back")

    def waiting(limit):
        events.append("spool read")
        return reading(limit)

    monkeypatch.setattr(intake, "writer_turn", turn)
    monkeypatch.setattr(queue, "waiting", waiting)
    assert intake.move() == 1
    # a look first (is there anything?), then the rows moved, read in the turn
    assert events == ["spool read", "turn taken", "spool read", "turn given back"]
    events.clear()
    assert intake.move() == 0  # the next mover finds nothing left, and takes no turn
    assert events == ["spool read"]
    assert InboundMail.objects.count() == 1


def test_spooled_mail_of_a_deleted_company_is_dropped_with_a_log_line(spool_on, acme, globex,
                                                                      caplog):
    services.accept_spooled(MESSAGE, [(globex, ["sales@globex.test"])], source="smtp")
    services.accept_spooled(message(2), [(acme, ["sales@acme.test"])], source="smtp")
    globex.delete()
    with caplog.at_level(logging.ERROR, logger="mailroom.intake"):
        assert intake.move() == 2
    assert list(InboundMail.objects.values_list("company", flat=True)) == [acme.pk]
    assert "no longer exists" in caplog.text
    assert intake.spool().count() == 0


def test_spooled_mail_over_the_size_limit_is_refused_before_anything_is_stored(
        spool_on, acme, settings):
    settings.MAILROOM_INBOUND_MAX_BYTES = 100
    with pytest.raises(services.TooLarge):
        services.accept_spooled(MESSAGE * 3, [(acme, ["sales@acme.test"])], source="smtp")
    assert not spool_on.exists() or intake.spool().count() == 0


def test_a_broken_spool_file_does_not_stop_the_routing_of_what_is_stored(
        spool_on, domains, acme, caplog):
    stored = services.accept(MESSAGE, company=acme, source="smtp",
                             envelope_to=["sales@acme.test"])
    spool_on.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="mailroom.incoming"):
        assert router_step("test-router") is True
    assert InboundMail.objects.get(pk=stored.pk).state == InboundMail.State.DONE
    assert "could not move the intake spool" in caplog.text
    assert spool_on.read_bytes().startswith(b"this is not a database")  # left as it was


def test_the_spool_is_used_on_a_sqlite_file_only(settings):
    settings.MAILROOM_INTAKE_SPOOL = "auto"
    assert intake.enabled() is False  # the tests' in-memory database: another process
    settings.MAILROOM_INTAKE_SPOOL = "on"  # could not read it, so no spool
    assert intake.enabled() is True


SEED = textwrap.dedent("""
    import django; django.setup()
    from mailroom.core.models import Company
    from mailroom.routing.models import Alias, AliasDomain
    company = Company.objects.create(name="Acme")
    domain = AliasDomain.objects.create(company=company, name="acme.test")
    Alias.objects.create(company=company, domain=domain, local_part="sales",
                         record_type="crm.lead")
""")
MOVE = textwrap.dedent("""
    import django; django.setup()
    from mailroom.incoming import intake
    from mailroom.incoming.models import InboundMail
    print(intake.move(), InboundMail.objects.count())
""")


@pytest.mark.slow
def test_the_gateway_accepts_while_a_routing_transaction_holds_the_database(tmp_path):
    """On a SQLite file, a writer holding the database's write lock (as the router does
    while it applies a decision) does not delay the gateway's 250, nor `mailroom deliver`."""
    from bench.common import free_port, wait_for_port

    database = tmp_path / "mailroom.sqlite3"
    env = mailroom_env(tmp_path, premigrated.sqlite_url(database))
    done = subprocess.run([sys.executable, "-c", SEED], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    port = free_port()
    gateway = subprocess.Popen(mailroom("gateway", "--smtp", f"127.0.0.1:{port}", "--lmtp",
                                        ""), env=env)
    try:
        wait_for_port(port, timeout=60)
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the router's write transaction, held
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            for n in range(10):
                assert client.sendmail("ada@client.example", ["sales@acme.test"],
                                       message(n)) == {}
        # an MTA's pipe (`mailroom deliver`) stores the same way
        piped = subprocess.run(mailroom("deliver", "--recipient", "sales@acme.test",
                                        "--sender", "ada@client.example", "-v", "2"),
                               input=message(10), env=env, capture_output=True, timeout=60)
        elapsed = time.monotonic() - started
        holder.execute("ROLLBACK")
        holder.close()
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    # ten 250s with the lock held all along: the database was never waited for (SQLite's
    # busy timeout is 30 s, so a wait would show as a minute or a 451, not seconds)
    assert elapsed < 20
    assert piped.returncode == 0 and b"stored as #s" in piped.stdout, piped.stderr
    moved = subprocess.run([sys.executable, "-c", MOVE], env=env, capture_output=True,
                           text=True, timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.split() == ["11", "11"]


def test_the_inbound_log_says_what_waits_in_the_spool_and_asks_about_the_worker(
        spool_on, acme, globex, alice, charlie, client_for):
    from django.urls import reverse

    log = reverse("admin:incoming_inboundmail_changelist")
    with time_machine.travel(datetime(2026, 12, 6, 9, 0, tzinfo=UTC), tick=False):
        services.accept_spooled(MESSAGE, [(acme, ["sales@acme.test"])], source="smtp")
        services.accept_spooled(message(2), [(acme, ["sales@acme.test"])], source="smtp")
        page = client_for(alice).get(log).content.decode()
        assert "2 messages accepted by the gateway are waiting to be taken in by a worker: " \
               "they appear here within seconds." in page
    with time_machine.travel(datetime(2026, 12, 6, 9, 5, tzinfo=UTC), tick=False):
        page = client_for(alice).get(log).content.decode()
        assert "the oldest since" in page and "mailroom worker" in page
        assert "waiting to be taken in" not in client_for(charlie).get(log).content.decode()
    intake.move()
    assert "waiting to be taken in" not in client_for(alice).get(log).content.decode()


def test_the_api_list_says_what_waits_in_the_spool_for_the_companies_the_caller_sees(
        spool_on, acme, globex, mia, api_as):  # noqa: F811 - the fixture
    """An integration that polls the log learns that accepted mail is on its way, and
    sees only its companies' share of it."""
    from tests.conftest import make_user

    services.accept_spooled(MESSAGE, [(acme, ["sales@acme.test"])], source="smtp")
    services.accept_spooled(message(2), [(globex, ["sales@globex.test"])], source="smtp")
    services.accept_spooled(message(3), [(globex, ["sales@globex.test"])], source="smtp")
    gina = make_user("gina", [globex], "Administrator")

    mine = api_as(mia).get("/api/v1/inbound").json()
    assert mine["count"] == 0 and mine["waiting"]["count"] == 1
    assert mine["waiting"]["oldest"] is not None
    assert api_as(gina).get("/api/v1/inbound").json()["waiting"]["count"] == 2
    only_acme = api_as(gina).get("/api/v1/inbound", {"company_id": acme.pk})
    assert only_acme.json()["waiting"]["count"] == 0

    intake.move()
    assert api_as(mia).get("/api/v1/inbound").json()["waiting"] == {"count": 0,
                                                                    "oldest": None}
