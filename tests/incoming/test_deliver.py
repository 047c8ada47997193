"""`mailroom deliver`: one message on stdin, the sysexits status an MTA's pipe acts on."""

from __future__ import annotations

import io
import subprocess

import pytest
from django.core.management import call_command

from mailroom.incoming.models import InboundMail
from mailroom.incoming.services import raw_bytes
from tests import premigrated

MESSAGE = (b"From: Ada <ada@client.example>\r\nTo: sales@acme.test\r\n"
           b"Subject: A quote please\r\n\r\nHello\r\n")


@pytest.fixture
def domains(acme, globex):
    from mailroom.routing.models import Alias, AliasDomain
    from mailroom.routing.services import clear_cache

    acme_domain = AliasDomain.objects.create(company=acme, name="acme.test")
    Alias.objects.create(company=acme, domain=acme_domain, local_part="sales",
                         record_type="crm.lead")
    AliasDomain.objects.create(company=globex, name="globex.test", accept_unknown=True)
    clear_cache()
    yield
    clear_cache()


def deliver(*args: str, stdin: bytes) -> tuple[int, str]:
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("deliver", *args, stdin=io.BytesIO(stdin), stderr=err)
        raise SystemExit(0)
    return exit_.value.code, err.getvalue()


@pytest.mark.django_db
def test_a_message_for_an_alias_is_stored(domains, acme):
    code, err = deliver("--recipient", "sales@acme.test", "--sender", "ada@client.example",
                        stdin=MESSAGE)
    assert (code, err) == (0, "")
    mail = InboundMail.objects.get()
    assert (mail.company, mail.source) == (acme, "deliver")
    assert mail.envelope_from == "ada@client.example"
    assert mail.envelope_to == ["sales@acme.test"]
    assert raw_bytes(mail) == MESSAGE


@pytest.mark.django_db
def test_recipients_of_two_companies_make_two_rows(domains, acme, globex):
    code, _ = deliver("--recipient", "sales@acme.test", "--recipient", "x@globex.test",
                      stdin=MESSAGE)
    assert code == 0
    assert {m.company for m in InboundMail.objects.all()} == {acme, globex}


@pytest.mark.django_db
def test_an_unknown_recipient_is_ex_nouser_and_nothing_is_stored(domains):
    code, err = deliver("--recipient", "sales@acme.test", "--recipient", "nobody@acme.test",
                        stdin=MESSAGE)
    assert code == 67
    assert err == "mailroom deliver: <nobody@acme.test>: no such address here\n"
    assert not InboundMail.objects.exists()


@pytest.mark.django_db
def test_an_empty_message_is_ex_dataerr(domains):
    code, err = deliver("--recipient", "sales@acme.test", stdin=b"\r\n")
    assert code == 65
    assert err == "mailroom deliver: empty message on stdin\n"


@pytest.mark.django_db
def test_a_message_over_the_limit_is_ex_dataerr(domains, settings):
    settings.MAILROOM_INBOUND_MAX_BYTES = 100
    code, err = deliver("--recipient", "sales@acme.test", stdin=MESSAGE * 10)
    assert code == 65
    assert "too large" in err and "100 bytes" in err
    assert not InboundMail.objects.exists()


@pytest.mark.django_db
def test_a_storage_failure_is_ex_tempfail(domains, monkeypatch):
    from mailroom.incoming import services

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "accept", full)
    code, err = deliver("--recipient", "sales@acme.test", stdin=MESSAGE)
    assert code == 75
    assert err.startswith("mailroom deliver: could not store the message, try again later")
    assert err.count("\n") == 1


@pytest.mark.slow
def test_deliver_as_an_mta_runs_it(tmp_path):
    """The real command line on a file database: exit status and one stderr line, no
    traceback."""
    from tests.core.test_processes import REPO, mailroom, mailroom_env

    env = mailroom_env(tmp_path, premigrated.sqlite_url(tmp_path / "deliver.sqlite3"))
    setup = (
        "from django.core.management import call_command\n"
        "from mailroom.core.models import Company\n"
        "from mailroom.routing.models import Alias, AliasDomain\n"
        "call_command('migrate', interactive=False, verbosity=0)\n"
        "c = Company.objects.create(name='Acme Corp')\n"
        "d = AliasDomain.objects.create(company=c, name='acme.test')\n"
        "Alias.objects.create(company=c, domain=d, local_part='sales', record_type='crm.lead')\n"
    )
    done = subprocess.run(mailroom("shell", "--no-imports", "-c", setup), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr

    def run(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
        return subprocess.run(mailroom("deliver", *args), input=stdin, env=env, cwd=REPO,
                              capture_output=True, timeout=60)

    ok = run("--recipient", "sales@acme.test", "--sender", "ada@client.example", stdin=MESSAGE)
    assert (ok.returncode, ok.stderr) == (0, b"")
    unknown = run("--recipient", "nobody@acme.test", stdin=MESSAGE)
    assert unknown.returncode == 67
    assert unknown.stderr == b"mailroom deliver: <nobody@acme.test>: no such address here\n"
    empty = run("--recipient", "sales@acme.test", stdin=b"")
    assert (empty.returncode, empty.stderr) == (65, b"mailroom deliver: empty message on stdin\n")

    import sqlite3

    # on a SQLite file it went to the intake spool, as the gateway's mail does; a router
    # step takes it in
    moved = subprocess.run(mailroom("shell", "--no-imports", "-c", (
        "from mailroom.incoming import intake\nprint(intake.move())")), env=env, cwd=REPO,
        capture_output=True, text=True, timeout=180)
    assert moved.stdout.split() == ["1"], moved.stderr
    with sqlite3.connect(tmp_path / "deliver.sqlite3") as db:
        rows = db.execute("SELECT source, envelope_from, envelope_to FROM "
                          "incoming_inboundmail").fetchall()
    assert rows == [("deliver", "ada@client.example", '["sales@acme.test"]')]
