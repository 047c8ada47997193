"""Exactly once across processes: two workers run the digest task for the same slots.

Two `mailroom shell` processes on one SQLite file, and two on PostgreSQL, each call
`run_due(slot)` for the same 8 daily slots, released together. Each digest, recipient and
period must be sent exactly once, every send must have its mail, and every mail its send.
Then the workers stop for three days: the next run sends one catch-up digest per recipient.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.core.test_processes import REPO, mailroom, mailroom_env, wait_for
from tests.outgoing.test_workers_pg import database_url, postgres_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

SETUP = """
from datetime import UTC, datetime, time
from django.core.management import call_command
from mailroom.core.models import Company, User
from mailroom.digests.models import Digest
from mailroom.digests.services import save_digest
from mailroom.routing.models import AliasDomain
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme", timezone="Europe/Paris")
AliasDomain.objects.create(company=company, name="acme.example")
users = []
for n in range(12):
    user = User.objects.create(username=f"u{n}", email=f"u{n}@acme.example",
                               last_seen_at=datetime(2999, 1, 1, tzinfo=UTC))
    user.companies.add(company)
    users.append(user)
for n in range(4):
    digest = save_digest(Digest(company=company, name=f"Digest {n}", periodicity="daily",
                                send_time=time(8), kpis=["crm.new_leads"]),
                         actor=None, recipients=users)
Digest.objects.update(created_at=datetime(2026, 1, 1, tzinfo=UTC),
                      next_run_at=datetime(2026, 3, 1, 7, tzinfo=UTC))
"""

WORKER = """
import os, time
from datetime import UTC, datetime, timedelta
from mailroom.digests.sending import run_due
while not os.path.exists({go!r}):
    time.sleep(0.01)
start = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
sent = 0
for day in range({days}):
    for minute in (0, 5, 10):
        sent += run_due(start + timedelta(days=day, minutes=minute)).sent
print("SENT", sent)
"""

CATCH_UP = """
from datetime import UTC, datetime
from mailroom.digests.sending import run_due
print("SENT", run_due(datetime(2026, 3, 12, 10, tzinfo=UTC)).sent)
"""


def _shell(env, code: str, log) -> subprocess.Popen:
    return subprocess.Popen(mailroom("shell", "--no-imports", "-c", code), env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)


def _query(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_two_workers_send_each_digest_recipient_and_period_once(tmp_path,
                                                                database_url):  # noqa: F811
    env = mailroom_env(tmp_path, database_url)
    setup_log = tmp_path / "setup.log"
    with setup_log.open("w") as log:
        assert _shell(env, SETUP, log).wait(timeout=300) == 0, setup_log.read_text()
    go = tmp_path / "go"
    days = 8
    procs, logs = [], []
    for name in ("w1", "w2"):
        path = tmp_path / f"{name}.log"
        logs.append(path)
        procs.append(_shell(env, WORKER.format(go=str(go), days=days), path.open("w")))
    time.sleep(0.5)
    go.write_text("go")
    for proc in procs:
        proc.wait(timeout=600)
    output = "\n".join(p.read_text()[-3000:] for p in logs)
    assert [p.returncode for p in procs] == [0, 0], output

    sent = sum(int(line.split()[1]) for p in logs for line in p.read_text().splitlines()
               if line.startswith("SENT"))
    expected = 4 * 12 * days  # digests x recipients x periods
    rows = _query(database_url, "SELECT digest_id, user_id, period_start, mail_id "
                                "FROM digests_digestsend WHERE kind = 'scheduled'")
    assert sent == len(rows) == expected, output
    assert len({(d, u, p) for d, u, p, _ in rows}) == expected, "a period was sent twice"
    assert len({p for _, _, p, _ in rows}) == days
    mails = _query(database_url, "SELECT COUNT(*) FROM outgoing_outgoingmail")[0][0]
    assert mails == expected and None not in {m for *_, m in rows}

    # no worker for three days: one catch-up digest each, for the latest day only
    catch_log = tmp_path / "catch.log"
    with catch_log.open("w") as log:
        assert _shell(env, CATCH_UP, log).wait(timeout=300) == 0, catch_log.read_text()
    wait_for(lambda: "SENT" in catch_log.read_text(), 5, "the catch-up run")
    assert "SENT 48" in catch_log.read_text(), catch_log.read_text()
    periods = _query(database_url, "SELECT COUNT(DISTINCT period_start) FROM "
                                   "digests_digestsend WHERE kind = 'scheduled'")[0][0]
    assert periods == days + 1
