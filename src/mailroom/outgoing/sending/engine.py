"""The sending engine: the `send` step of `mailroom worker`.

One pass of `Sender.run_once`:

1. claim — up to `batch_size` due mails, most urgent first, leased to this worker in one short
   transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's IMMEDIATE transaction
   serialises claimers) that commits before any network I/O (claim.py);
2. prepare — recipients, attachments, servers and DKIM keys in a few queries; expired mails
   fail here, each message is built and signed once (prepare.py, compose.py);
3. deliver — per server: reserve rate-limit room, then send over up to `max_connections`
   pooled connections in threads that never touch the database (plan.py, lanes.py; an error
   on one mail stays with that mail); a server that cannot be used opens its circuit and its
   mails fail over to the next matching server in the same pass. Meanwhile the main thread
   renews the lease of the mails in the air (a heartbeat, leases.py);
4. settle — `decide` (decide.py, pure) says what each mail becomes; settle.py writes it as
   recipient, mail, attempt and notification rows in a handful of statements, in one
   transaction guarded by the lease.

A worker killed between 3 and 4 leaves `sending` rows behind and stops renewing them; when
their (short) lease expires `reap_leases` makes them `uncertain` and due: they are sent again
with the same Message-ID and stay flagged (`was_uncertain`). Accepted recipients are never
sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from django.utils import timezone

from mailroom.outgoing.compose import Composer
from mailroom.outgoing.sending.claim import claim_due
from mailroom.outgoing.sending.jobs import Flight, Job, Lane
from mailroom.outgoing.sending.lanes import LaneRunner
from mailroom.outgoing.sending.leases import (
    HEARTBEAT,
    HOUSEKEEPING_EVERY,
    LEASE,
    reap_leases,
    renew_leases,
)
from mailroom.outgoing.sending.plan import after_round, plan_lanes
from mailroom.outgoing.sending.prepare import prepare
from mailroom.outgoing.sending.settle import settle
from mailroom.outgoing.smtp.pool import ConnectionPool
from mailroom.outgoing.smtp.tls import SslContextSource

log = logging.getLogger("mailroom.sender")

BATCH_SIZE = 200  # the first claim; later claims follow the measured sending rate
MIN_BATCH, MAX_BATCH = 20, 1000
# Connections stop starting new messages after this many seconds of a pass. The mails not
# reached are released (unchanged) and claimed again in priority order, so an immediate mail
# never waits behind more than about one budget of sending, however slow the servers are.
PASS_BUDGET = 0.5
# One step keeps claiming new batches for this long while there is work, then returns so the
# worker's other steps get their turn.
STEP_SECONDS = 2.0
MAX_THREADS = 64


# --- the sender -------------------------------------------------------------------------------

class Sender(LaneRunner):
    def __init__(self, owner: str, *, batch_size: int | None = None,
                 lease: timedelta = LEASE, pass_budget: float = PASS_BUDGET,
                 clock: Callable[[], datetime] = timezone.now,
                 ssl_context: SslContextSource = None, timeout: float = 30,
                 rand: Callable[[], float] | None = None,
                 step_seconds: float = STEP_SECONDS) -> None:
        self.owner = owner[:100]
        self.step_seconds = step_seconds
        self._executor: ThreadPoolExecutor | None = None
        self.adaptive = batch_size is None
        self.batch_size = batch_size or BATCH_SIZE
        self.pass_budget = pass_budget
        self.lease = lease
        self.clock = clock
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.rand = rand
        self.pool = ConnectionPool()
        # the last lane started on each connection slot (server pk, slot): the next lane on
        # that slot runs right after it, so connections never idle between passes
        self._slots: dict[tuple[int, int], Future] = {}
        self.composer = Composer()
        self._housekept = 0.0
        # the lease is renewed this often (real seconds) while a pass runs
        self.beat_every = min(HEARTBEAT, lease / 4).total_seconds()
        self._beaten = time.monotonic()

    # --- the pass -------------------------------------------------------------------------

    def run_once(self) -> int:
        """Send what is due; returns how many mails were handled (0: nothing was due).

        Passes overlap: the next batch is claimed, built and queued on the connections while
        they still send the current one (each connection takes up its next lane the moment it
        finishes the last), and the current one is recorded while the next one is sent. Every
        batch started is recorded before this returns (after at most `step_seconds` of
        claiming), so a stopping worker never leaves mails mid-send.
        """
        handled = 0
        flight: Flight | None = None
        claim_until = time.monotonic() + self.step_seconds
        upcoming: Flight | None = None
        try:
            while True:
                now = self.clock()
                if flight is None:
                    self.housekeeping(now)
                jobs = None
                if flight is None or time.monotonic() < claim_until:
                    claimed = self.claim_states(now)
                    if claimed:
                        jobs = self.prepare(list(claimed), now)
                        for job in jobs:
                            job.previous_state = claimed[job.mail.pk]
                upcoming = self.launch(jobs, now) if jobs else None
                if flight is not None:
                    self.finish(flight)
                    self.settle(flight.jobs, self.clock())
                    handled += len(flight.jobs)
                flight, upcoming = upcoming, None
                if flight is None:
                    return handled
        except BaseException:
            # let the connections finish, and record what the next batch did if the database
            # lets us (else its lease runs out and it becomes uncertain: never lost)
            for in_air in (flight, upcoming):
                if in_air is not None:
                    self._wait(in_air.futures, errors=False)
            if upcoming is not None:
                try:
                    self.finish(upcoming)
                    self.settle(upcoming.jobs, self.clock())
                except Exception:
                    log.exception("sender: could not record a batch after an error")
            raise

    def _adapt(self, jobs: list[Job], lanes: list[Lane]) -> None:
        """Claim about what the servers take in one pass budget (plus a margin)."""
        ran = [lane for lane in lanes if lane.started]
        if not self.adaptive or not ran:
            return
        seconds = max(lane.ended for lane in ran) - min(lane.started for lane in ran)
        if seconds < 0.05:
            return
        sent = sum(1 for job in jobs if job.attempted)
        if sent:
            wanted = int(sent / seconds * self.pass_budget * 1.25)
            self.batch_size = max(MIN_BATCH, min(MAX_BATCH, (self.batch_size + wanted) // 2))

    def heartbeat(self) -> None:
        """Renew the lease of the mails this worker is sending, when a beat is due."""
        if time.monotonic() - self._beaten >= self.beat_every:
            self._beaten = time.monotonic()
            renew_leases(self.owner, self.clock(), self.lease)

    def _wait(self, futures: list[Future], *, errors: bool = True) -> None:
        """Wait for lanes to finish, renewing the leases meanwhile (a pass may take longer
        than the lease: a slow server, a large message). Raises the first lane's error."""
        pending = set(futures)
        while pending:
            left = max(0.0, self.beat_every - (time.monotonic() - self._beaten))
            _, pending = wait(pending, timeout=left)
            if pending:
                self.heartbeat()
        for future in futures:
            if errors:
                future.result()

    def housekeeping(self, now: datetime) -> None:
        self.pool.close_idle()
        if time.monotonic() - self._housekept >= HOUSEKEEPING_EVERY:
            self._housekept = time.monotonic()
            reap_leases(now)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._slots.clear()
        self.pool.close_all()

    def claim(self, now: datetime) -> list[int]:
        return list(self.claim_states(now))

    def claim_states(self, now: datetime) -> dict[int, str]:
        """Lease up to `batch_size` due mails to this worker, committed on return:
        {id: the state it had}."""
        return claim_due(self.owner, now, self.batch_size, self.lease)

    def prepare(self, ids: list[int], now: datetime) -> list[Job]:
        return prepare(ids, now, self.composer, self.owner)

    # --- delivering (threads do the network, the main thread the database) ---------------

    def deliver(self, jobs: list[Job], now: datetime) -> None:
        """Send `jobs` and wait for the outcome (failover included)."""
        self.finish(self.launch(jobs, now))

    def launch(self, jobs: list[Job], now: datetime) -> Flight:
        """Reserve rate-limit room and queue the lanes on the connections; returns at once."""
        todo = [j for j in jobs if j.state is None and j.candidates]
        lanes, reservations = plan_lanes(todo, now) if todo else ([], {})
        return Flight(jobs, lanes, reservations, self._start(lanes), now)

    def finish(self, flight: Flight) -> None:
        """Wait for the connections of `flight`; fail over what a dead server could not
        take (synchronously: a rare path)."""
        self._wait(flight.futures)
        failed: set[int] = set()
        again = after_round(flight.lanes, flight.reservations, failed, flight.now)
        while again:
            lanes, reservations = plan_lanes(again, flight.now)
            self._wait(self._start(lanes))
            again = after_round(lanes, reservations, failed, flight.now)
        self._adapt(flight.jobs, flight.lanes)

    def _start(self, lanes: list[Lane]) -> list[Future]:
        """Queue each lane on its connection slot, behind the lane running there.

        The executor runs tasks first in, first out, so a lane waiting for its predecessor
        only ever waits for one already running: no deadlock however many slots there are.
        """
        budget = min(self.pass_budget, self.lease.total_seconds() * 0.5)
        futures = []
        for lane in lanes:
            key = (lane.server.pk, lane.slot)
            future = self.executor().submit(self._run_after, self._slots.get(key), lane, budget)
            self._slots[key] = future
            futures.append(future)
        return futures

    def _run_after(self, previous: Future | None, lane: Lane, budget: float) -> None:
        if previous is not None:
            previous.exception()  # wait; its own flight reports what went wrong
        lane.started = time.monotonic()
        try:
            self._run_lane(lane, lane.started + budget)
        finally:
            lane.ended = time.monotonic()

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="smtp")
        return self._executor

    # --- settling -------------------------------------------------------------------------

    def settle(self, jobs: list[Job], now: datetime) -> None:
        settle(jobs, now, owner=self.owner, rand=self.rand)


# --- the worker step ------------------------------------------------------------------------

_senders: dict[str, Sender] = {}


def send_step(worker_name: str) -> bool:
    """The `send` step: one pass of this worker's Sender (its connections stay pooled)."""
    sender = _senders.get(worker_name)
    if sender is None:
        sender = _senders[worker_name] = Sender(worker_name)
    return sender.run_once() > 0

