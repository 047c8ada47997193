"""Outbox leases: short, renewed by a heartbeat while a pass runs, reaped when a worker dies.

- `renew_leases` extends only the rows a worker still owns and is still sending;
- a live worker whose pass outlasts its lease keeps its mails (a reaper runs meanwhile in its
  own process): nothing becomes uncertain, nothing is sent twice;
- a worker killed with kill -9 mid-pass: its mails are uncertain and sent again by another
  worker within a minute, with the default lease (it used to take ten).
"""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import pytest

from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.sending.leases import LEASE, reap_leases, renew_leases
from tests import premigrated
from tests.core.test_processes import REPO, mailroom, wait_for
from tests.outgoing.smtp_peer import SmtpPeer
from tests.outgoing.test_crash import SendScenario
from tests.outgoing.test_sender import enqueue
from tests.outgoing.test_workers_pg import database_url, postgres_url  # noqa: F401 - fixtures

State = OutgoingMail.State


def test_renew_extends_only_the_leases_this_worker_still_holds(acme):
    from django.utils import timezone

    now = timezone.now()
    mine, theirs, reaped, done = (enqueue(acme, to=[f"c{n}@client.example"]) for n in range(4))
    OutgoingMail.objects.filter(pk=mine.pk).update(
        state=State.SENDING, lease_owner="w1", lease_expires_at=now)
    OutgoingMail.objects.filter(pk=theirs.pk).update(
        state=State.SENDING, lease_owner="w2", lease_expires_at=now)
    OutgoingMail.objects.filter(pk=reaped.pk).update(
        state=State.SENDING, lease_owner="w1", lease_expires_at=now - timedelta(seconds=1))
    assert reap_leases(now) == 1  # w1 missed its beats: another worker reaped that one
    OutgoingMail.objects.filter(pk=done.pk).update(  # recorded meanwhile
        state=State.SENT, lease_owner="w1", lease_expires_at=now)

    assert renew_leases("w1", now, timedelta(seconds=30)) == 1

    leases = dict(OutgoingMail.objects.values_list("pk", "lease_expires_at"))
    assert leases == {mine.pk: now + timedelta(seconds=30), theirs.pk: now,
                      reaped.pk: None, done.pk: now}
    assert OutgoingMail.objects.get(pk=reaped.pk).state == State.UNCERTAIN
    assert LEASE <= timedelta(seconds=50)  # + 10 s until the next reaping: within a minute


# --- real processes --------------------------------------------------------------------------

REAPER = """
import time
from django.utils import timezone
from mailroom.outgoing.sending.leases import reap_leases
print("REAPING", flush=True)
while True:
    reap_leases(timezone.now())
    time.sleep(0.2)
"""

SHORT_LEASE_SENDER = """
import time
from datetime import timedelta
from mailroom.outgoing.sending.engine import Sender
sender = Sender("w1", lease=timedelta(seconds=2))
while not sender.run_once():
    time.sleep(0.05)
sender.close()
print("HANDLED", flush=True)
"""


@pytest.mark.slow
def test_a_pass_longer_than_the_lease_keeps_its_mails(tmp_path, database_url):  # noqa: F811
    with SmtpPeer() as peer:
        scenario = SendScenario(tmp_path, database_url, peer)
        try:
            scenario.setup(1)
            peer.faults.slow_data = 8  # four leases long
            with (tmp_path / "reaper.log").open("w") as out:
                reaper = subprocess.Popen(mailroom("shell", "--no-imports", "-c", REAPER),
                                          env=scenario.env, cwd=REPO, stdout=out,
                                          stderr=subprocess.STDOUT)
            scenario.workers.append(("reaper", reaper))
            wait_for(lambda: "REAPING" in (tmp_path / "reaper.log").read_text(), 60,
                     "the reaper to start", procs=scenario.workers)
            scenario.shell(SHORT_LEASE_SENDER, "w1", timeout=120)
        finally:
            scenario.kill_all()
        assert peer.slowed == 1
        rows = scenario.query("SELECT state, was_uncertain FROM outgoing_outgoingmail")
        assert [(state, bool(uncertain)) for state, uncertain in rows] == [("sent", False)]
        assert len(peer.messages) == 1


@pytest.mark.slow
def test_a_killed_workers_mails_go_out_again_within_a_minute(tmp_path):
    with SmtpPeer() as peer:
        database = premigrated.sqlite_url(tmp_path / "mailroom.sqlite3")
        scenario = SendScenario(tmp_path, database, peer)
        try:
            scenario.setup(300)
            peer.faults.stall_after = 100
            first = scenario.start_worker("w1")
            wait_for(lambda: peer.stalled >= 1, 60, "the sink to hold a DATA",
                     procs=scenario.workers)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            killed_at = time.monotonic()
            scenario.workers.remove(("w1", first))
            in_flight = {row[0] for row in scenario.query(
                "SELECT message_id FROM outgoing_outgoingmail WHERE state = 'sending'")}
            assert in_flight, scenario.states()
            peer.faults.clear()
            scenario.start_worker("w2")
            # no lease is expired by hand: the worker's own lease has to run out
            scenario.wait_until_all("sent", 300, timeout=80 - (time.monotonic() - killed_at))
        finally:
            scenario.kill_all()
        rows = scenario.query("SELECT message_id, was_uncertain FROM outgoing_outgoingmail")
        assert {mid for mid, uncertain in rows if uncertain} == in_flight
        assert {mid for mid, _ in rows} <= set(peer.message_ids()), "a mail was lost"
