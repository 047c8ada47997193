"""kill -9 a `mailroom worker --steps letters` between Lob's acceptance and the database write:
after a restart the letter is recorded, and the fake Lob (which dedupes on the Idempotency-Key
header as Lob does, and counts outside the database) made exactly one letter. On SQLite and on
PostgreSQL (whose claim takes `FOR UPDATE SKIP LOCKED`).
"""

# ruff: noqa: F811 - the fixtures imported from the fake's module are the tests' arguments

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.core.test_processes import REPO, mailroom, mailroom_env, stop, wait_for
from tests.letters.fakes.lob import lob_fake  # noqa: F401 - fixture
from tests.outgoing.test_workers_pg import database_url, postgres_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

SETUP = """
from django.core.management import call_command
from mailroom.contacts.models import Partner
from mailroom.core.models import Company
from mailroom.letters import services
from mailroom.letters.models import PostalProvider
call_command("migrate", interactive=False, verbosity=0)
company = Company.objects.create(name="Acme", country="US", street="185 Berry Street",
                                 city="San Francisco", state="CA", zip="94107")
partner = Partner.objects.create(company=company, name="Ada Lovelace",
                                 street="742 Evergreen Terrace", city="Springfield", state="OR",
                                 zip="97403", country="US")
provider = PostalProvider.objects.create(company=company, name="Lob", kind="lob",
                                         window_standard="us10", settings={settings!r},
                                         credentials={credentials!r})
services.send_by_post(partner, actor=None, partner=partner,
                      options=services.LetterOptions(provider=provider, cover_page=True))
"""


def _query(database_url: str, sql: str) -> list[tuple]:
    """Read the database directly (not through the Django connection of this process)."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [tuple(str(value) for value in row) for row in conn.execute(sql).fetchall()]


def test_a_worker_killed_after_lob_accepted_never_posts_a_letter_twice(tmp_path: Path,
                                                                       lob_fake, database_url):
    env = mailroom_env(tmp_path, database_url,
                       MAILROOM_WORKER_MODULES="tests.letters.lob_crash_worker",
                       MAILROOM_TEST_CRASH_FILE=str(tmp_path / "crashed"),
                       MAILROOM_LETTERS_LEASE_SECONDS="2")
    script = SETUP.format(settings=lob_fake.settings, credentials=lob_fake.credentials)
    setup = subprocess.run(mailroom("shell", "--no-imports", "-c", script), env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=180)
    assert setup.returncode == 0, setup.stderr

    def posts() -> list[dict]:
        return [r for r in lob_fake.requests if r["method"] == "POST"]

    def row() -> tuple:
        [found] = _query(database_url,
                         "SELECT state, provider_ref, idempotency_key FROM letters_letter")
        return found

    with (tmp_path / "w1.log").open("w") as out:
        first = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w1"),
                                 env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    assert first.wait(timeout=120) == -signal.SIGKILL, (tmp_path / "w1.log").read_text()
    assert lob_fake.created == 1 and len(posts()) == 1
    assert row()[:2] == ("queued", "")  # the crash came before the write

    with (tmp_path / "w2.log").open("w") as out:
        second = subprocess.Popen(mailroom("worker", "--steps", "letters", "--name", "w2"),
                                  env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: row()[0] == "submitted", 60, "the letter submitted by w2",
                 procs=[("w2", second)])
    finally:
        stop(second)

    state, provider_ref, key = row()
    [made] = lob_fake.letters
    assert lob_fake.created == 1 and provider_ref == made
    keys = [r["headers"]["idempotency-key"].replace("-", "") for r in posts()]
    assert len(keys) == 2 and set(keys) == {key.replace("-", "")}
    events = _query(database_url, "SELECT state FROM letters_letterevent ORDER BY id")
    assert [state for state, in events] == ["queued", "submitted"]
