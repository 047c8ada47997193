"""kill -9 a `mailroom worker --steps letters` between Pingen's acceptance and the database
write: after a restart the letter is recorded, and Pingen (the fake on loopback, counting the
letters it creates, outside the database) holds it exactly once — the second worker sent the
same Idempotency-Key and got the same letter back.

Own SQLite file database; the fake runs in this test process, the workers are real processes.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import premigrated
from tests.core.test_processes import REPO, mailroom, mailroom_env, stop, wait_for
from tests.letters.fakes.pingen import FakePingen

pytestmark = pytest.mark.slow

SETUP = """
from django.core.management import call_command
from mailroom.contacts.models import Partner
from mailroom.core.models import Company
from mailroom.letters import services
from mailroom.letters.models import PostalProvider
import tests.letters.pingen_crash_worker  # registers "test-pingen-crash"
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme", country="FR", city="Lyon", street="1 Quai")
partner = Partner.objects.create(company=company, name="Ada Lovelace", street="12 Rue de la Paix",
                                 zip="75002", city="Paris", country="FR")
provider = PostalProvider.objects.create(company=company, name="Crashing Pingen",
                                         kind="test-pingen-crash", settings={settings!r},
                                         credentials={credentials!r})
services.send_by_post(partner, actor=None, partner=partner,
                      options=services.LetterOptions(provider=provider, cover_page=True))
"""


@pytest.fixture
def fake():
    running = FakePingen().start()
    yield running
    running.stop()


def test_a_worker_killed_after_pingen_accepted_never_posts_a_letter_twice(tmp_path: Path,
                                                                         fake):
    database = tmp_path / "letters.sqlite3"
    env = mailroom_env(tmp_path, premigrated.sqlite_url(database),
                       MAILROOM_WORKER_MODULES="tests.letters.pingen_crash_worker",
                       MAILROOM_TEST_CRASH_FILE=str(tmp_path / "crashed"),
                       MAILROOM_LETTERS_LEASE_SECONDS="2")
    script = SETUP.format(settings=fake.settings, credentials=fake.credentials)
    setup = subprocess.run(mailroom("shell", "--no-imports", "-c", script), env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=180)
    assert setup.returncode == 0, setup.stderr

    with (tmp_path / "w1.log").open("w") as out:
        first = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w1"),
                                 env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    assert first.wait(timeout=120) == -signal.SIGKILL, (tmp_path / "w1.log").read_text()
    assert fake.created == 1  # Pingen has the letter …

    def row() -> tuple[str, str]:
        with sqlite3.connect(database) as conn:
            return conn.execute("SELECT state, provider_ref FROM letters_letter").fetchone()

    assert row() == ("queued", "")  # … Mailroom does not know it yet
    with (tmp_path / "w2.log").open("w") as out:
        second = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w2"),
                                  env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: row()[0] == "submitted", 60, "the letter submitted by w2",
                 procs=[("w2", second)])
    finally:
        stop(second)
    assert fake.created == 1 and fake.create_requests == 2  # asked twice, posted once
    keys = {headers["Idempotency-Key"] for method, path, headers in fake.requests
            if method == "POST" and path.endswith("/letters")}
    assert len(keys) == 1
    assert row() == ("submitted", next(iter(fake.letters)))
    with sqlite3.connect(database) as conn:
        events = [r[0] for r in conn.execute(
            "SELECT message FROM letters_letterevent ORDER BY id")]
    assert events[-1] == "Already accepted by Pingen (status: validating)."
