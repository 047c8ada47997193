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

from tests.core.test_processes import REPO, mailroom, mailroom_env, stop, wait_for

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
    env = mailroom_env(tmp_path, f"sqlite:///{database}",
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
    assert counts.read_text().split() == ["accepted"]

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
    assert counts.read_text().split() == ["accepted", "known"]
    with sqlite3.connect(database) as conn:
        batches = conn.execute("SELECT id, letter_count FROM letters_printbatch").fetchall()
        events = [row[0] for row in conn.execute(
            "SELECT state FROM letters_letterevent ORDER BY id")]
    assert len(batches) == 1 and batches[0][1] == 1
    assert events == ["queued", "submitted"]
