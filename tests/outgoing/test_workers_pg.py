"""Several `mailroom worker --steps send` processes on one database.

- Two workers on PostgreSQL send 2,000 mails: exactly 2,000 distinct Message-IDs reach the
  sink, each once, and both workers took part (SKIP LOCKED shares the queue).
- A rate limit holds across two worker processes, on SQLite and PostgreSQL. The limit is per
  day, so the run cannot straddle a window by bad luck (a run close to midnight UTC waits).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests import premigrated
from tests.conftest import NEEDS_POSTGRES
from tests.core.test_processes import postgres_admin_url, stop, wait_for
from tests.outgoing.smtp_peer import SmtpPeer
from tests.outgoing.test_crash import SendScenario

pytestmark = pytest.mark.slow


@pytest.fixture
def peer():
    with SmtpPeer() as sink:
        yield sink


@pytest.fixture
def postgres_url():
    import psycopg

    admin_url = postgres_admin_url()
    admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    name, url = premigrated.postgres_database(admin, "mr_send")
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=NEEDS_POSTGRES)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return premigrated.sqlite_url(tmp_path / "mailroom.sqlite3")
    return request.getfixturevalue("postgres_url")


@NEEDS_POSTGRES
def test_two_workers_on_postgresql_send_2000_mails_exactly_once(tmp_path, peer, postgres_url):
    scenario = SendScenario(tmp_path, postgres_url, peer)
    try:
        scenario.setup(2000)
        scenario.hold()
        for name in ("w1", "w2"):
            scenario.start_worker(name)
        started = scenario.release_when_running()
        scenario.wait_until_all("sent", 2000)
        seconds = time.monotonic() - started
        pickup = scenario.immediate_pickup_seconds()
        codes = [stop(proc) for _, proc in scenario.workers]
    finally:
        scenario.kill_all()
    assert codes == [0, 0], scenario.logs()
    at_sink = Counter(peer.message_ids())
    ids = {row[0] for row in scenario.query(
        "SELECT message_id FROM outgoing_outgoingmail WHERE subject != 'Your code'")}
    assert len(ids) == 2000 and ids <= set(at_sink)
    assert len(at_sink) == 2001 and set(at_sink.values()) == {1}, "a mail went out twice"
    by_worker = dict(scenario.query("SELECT worker, COUNT(*) FROM outgoing_sendattempt "
                                    "GROUP BY worker"))
    assert set(by_worker) == {"w1", "w2"}, by_worker
    assert pickup < 1.0, f"an immediate mail took {pickup:.2f}s to be picked up"
    print(f"two workers on PostgreSQL: 2000 mails in {seconds:.1f}s, {by_worker}")


def test_a_rate_limit_holds_across_two_worker_processes(tmp_path, peer, database_url):
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=2):  # never straddle the daily window
        time.sleep((midnight - now).total_seconds() + 1)
        midnight += timedelta(days=1)
    scenario = SendScenario(tmp_path, database_url, peer)
    try:
        scenario.setup(1000, rate_per_day=250, max_connections=2)
        scenario.hold()
        for name in ("w1", "w2"):
            scenario.start_worker(name)
        scenario.release_when_running()
        wait_for(lambda: scenario.states().get("outgoing", 0) == 0
                 and scenario.states().get("sending", 0) == 0, 60,
                 "every mail to be sent or waiting", procs=scenario.workers)
        codes = [stop(proc) for _, proc in scenario.workers]
    finally:
        scenario.kill_all()
    assert codes == [0, 0], scenario.logs()
    assert len(peer.messages) == 250
    assert scenario.states() == {"sent": 250, "deferred": 750}
    waiting = scenario.query("SELECT next_attempt_at, attempt_count FROM outgoing_outgoingmail "
                             "WHERE state = 'deferred'")
    assert {count for _, count in waiting} == {0}  # waiting is not failing
    assert {_utc(at) for at, _ in waiting} == {midnight}
    by_worker = dict(scenario.query("SELECT worker, COUNT(*) FROM outgoing_sendattempt "
                                    "GROUP BY worker"))
    assert sum(by_worker.values()) == 250
    print(f"rate limit on {database_url.split(':')[0]}: sends by worker {by_worker}")


def _utc(value) -> datetime:
    if isinstance(value, str):  # SQLite stores UTC as text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)
