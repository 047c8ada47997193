"""kill -9 a `mailroom worker --steps letters` between the print room's acceptance and the
database write: after a restart the letter is recorded and in the print room exactly once.

Own SQLite file database; the provider counts in a file, not in the database it could lie to.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import premigrated
from tests.core.test_processes import REPO, mailroom, mailroom_env, stop, wait_for
from tests.outgoing.test_workers_pg import database_url, postgres_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

SETUP = """
from django.core.management import call_command
from mailroom.contacts.models import Partner
from mailroom.core.models import Company
from mailroom.letters import services
from mailroom.letters.models import PostalProvider
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme", country="FR", city="Lyon", street="1 Quai")
partner = Partner.objects.create(company=company, name="Ada Lovelace", street="12 Rue de la Paix",
                                 zip="75002", city="Paris", country="FR")
provider = PostalProvider.objects.create(company=company, name="Crashing room",
                                         kind="test-crash")
services.send_by_post(partner, actor=None, partner=partner,
                      options=services.LetterOptions(provider=provider, cover_page=True))
"""


def test_a_worker_killed_after_acceptance_never_prints_a_letter_twice(tmp_path: Path):
    database = tmp_path / "letters.sqlite3"
    counts = tmp_path / "counts.log"
    env = mailroom_env(tmp_path, premigrated.sqlite_url(database),
                       MAILROOM_WORKER_MODULES="tests.letters.crash_provider",
                       MAILROOM_TEST_COUNT_FILE=str(counts),
                       MAILROOM_TEST_CRASH_FILE=str(tmp_path / "crashed"),
                       MAILROOM_LETTERS_LEASE_SECONDS="2")
    setup = subprocess.run(mailroom("shell", "--no-imports", "-c", SETUP), env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=180)
    assert setup.returncode == 0, setup.stderr

    with (tmp_path / "w1.log").open("w") as out:
        first = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w1"),
                                 env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    assert first.wait(timeout=120) == -signal.SIGKILL, (tmp_path / "w1.log").read_text()
    assert [line.split()[0] for line in counts.read_text().splitlines()] == ["accepted"]

    def state() -> str:
        with sqlite3.connect(database) as conn:
            return conn.execute("SELECT state FROM letters_letter").fetchone()[0]

    assert state() == "queued"  # the crash came before the write
    with (tmp_path / "w2.log").open("w") as out:
        second = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w2"),
                                  env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: state() == "submitted", 60, "the letter submitted by w2",
                 procs=[("w2", second)])
    finally:
        stop(second)
    assert [line.split()[0] for line in counts.read_text().splitlines()] == ["accepted", "known"]
    with sqlite3.connect(database) as conn:
        batches = conn.execute("SELECT id, letter_count FROM letters_printbatch").fetchall()
        events = [row[0] for row in conn.execute(
            "SELECT state FROM letters_letterevent ORDER BY id")]
    assert len(batches) == 1 and batches[0][1] == 1
    assert events == ["queued", "submitted"]


MANY = """
from django.core.management import call_command
from mailroom.contacts.models import Partner
from mailroom.core.models import Company
from mailroom.letters import services
from mailroom.letters.models import PostalProvider
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme", country="FR")
partner = Partner.objects.create(company=company, name="Ada Lovelace", street="12 Rue de la Paix",
                                 zip="75002", city="Paris", country="FR")
provider = PostalProvider.objects.create(company=company, name="Counting room",
                                         kind="test-crash")
for _ in range({count}):
    services.send_by_post(partner, actor=None, partner=partner,
                          options=services.LetterOptions(provider=provider, cover_page=True))
"""


def test_two_workers_submit_every_letter_exactly_once(tmp_path: Path, database_url):  # noqa: F811
    count = 30
    counts = tmp_path / "counts.log"
    env = mailroom_env(tmp_path, database_url,
                       MAILROOM_WORKER_MODULES="tests.letters.crash_provider",
                       MAILROOM_TEST_COUNT_FILE=str(counts))
    setup = subprocess.run(mailroom("shell", "--no-imports", "-c", MANY.format(count=count)),
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr

    def lines() -> list[str]:
        return counts.read_text().splitlines() if counts.exists() else []

    workers = []
    for name in ("w1", "w2"):
        with (tmp_path / f"{name}.log").open("w") as out:
            workers.append((name, subprocess.Popen(
                mailroom("worker", "--steps", "letters", "--name", name), env=env, cwd=REPO,
                stdout=out, stderr=subprocess.STDOUT)))
    try:
        wait_for(lambda: len(lines()) >= count, 120, f"{count} letters submitted",
                 procs=workers)
        # on a busy machine one worker may finish the queue before the other has started:
        # stop them only once both run (a SIGTERM during start-up is not a clean stop)
        wait_for(lambda: all("running steps" in (tmp_path / f"{name}.log").read_text()
                             for name, _ in workers), 120, "both workers to run",
                 procs=workers)
    finally:
        codes = [stop(proc) for _, proc in workers]
    assert codes == [0, 0]
    accepted = [line.split()[1] for line in lines() if line.startswith("accepted")]
    assert len(accepted) == len(set(accepted)) == count
    assert not [line for line in lines() if line.startswith("known")]
