"""Planning a round of sending: which mails go over which connection, and what a round's
connection errors mean (the circuit breaker's bookkeeping and failover to the next server).

Database writes here are the shared counters only (rate windows, circuit state); no network.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from mailroom.core import oauth
from mailroom.outgoing.models import FailureType, MailServer
from mailroom.outgoing.sending import circuit, rate_limits
from mailroom.outgoing.sending.jobs import Job, Lane
from mailroom.outgoing.smtp.smtp_errors import SmtpError

log = logging.getLogger("mailroom.sender")


def plan_lanes(jobs: list[Job], now: datetime
               ) -> tuple[list[Lane], dict[int, rate_limits.Reservation]]:
    """Group `jobs` by their best server, reserve rate-limit room there (what does not fit
    waits for the next window) and split what may go into one lane per connection."""
    by_server: dict[int, list[Job]] = defaultdict(list)
    for job in jobs:
        by_server[job.candidates[0].pk].append(job)
    lanes: list[Lane] = []
    reservations: dict[int, rate_limits.Reservation] = {}
    for group in by_server.values():
        server = group[0].candidates[0]
        reservation = rate_limits.reserve(server, len(group), now)
        reservations[server.pk] = reservation
        go, rest = group[:reservation.granted], group[reservation.granted:]
        for job in rest:
            job.wait(reservation.wait_until,
                     f"{server.name} has reached its rate limit; the email waits for the "
                     f"next window.")
        if not go:
            continue
        token = None
        if server.auth == MailServer.Auth.XOAUTH2:
            try:
                token = oauth.access_token(server)
            except Exception as exc:
                error = SmtpError("auth", FailureType.AUTHENTICATION, str(exc),
                                  temporary=getattr(exc, "temporary", True),
                                  server_fault=True)
                lanes.append(Lane(server, [], error=error, unattempted=go))
                continue
        width = max(1, min(server.max_connections, len(go)))
        lanes += [Lane(server, go[i::width], token, slot=i) for i in range(width)]
    return lanes, reservations


def after_round(lanes: list[Lane], reservations: dict[int, rate_limits.Reservation],
                failed: set[int], now: datetime) -> list[Job]:
    """Circuit breaker bookkeeping and failover; returns the mails to try elsewhere."""
    by_server: dict[int, list[Lane]] = defaultdict(list)
    for lane in lanes:
        by_server[lane.server.pk].append(lane)
    again: list[Job] = []
    for server_lanes in by_server.values():
        server = server_lanes[0].server
        unattempted = [j for lane in server_lanes for j in lane.unattempted]
        reservations[server.pk].release(len(unattempted))
        errors = [lane.error for lane in server_lanes if lane.error is not None]
        if not errors:
            circuit.record_success(server)
            for job in unattempted:  # out of time: claimed again in the next pass
                job.release()
            continue
        if any(lane.opened for lane in server_lanes):
            # it works, but not for every connection (e.g. too many at once): no
            # failover, no circuit; the rest goes out in the next pass
            log.info("sender: %s refused some connections: %s", server.name,
                     errors[0].message)
            for job in unattempted:
                job.release()
            continue
        circuit.record_failure(server, errors[0].message, now)
        failed.add(server.pk)
        for job in unattempted:
            job.candidates = [s for s in job.candidates
                              if s.pk not in failed and not circuit.circuit_open(s, now)]
            if job.candidates:
                again.append(job)
            else:
                job.defer(errors[0].failure_type, errors[0].message)
                job.used_server = server
    return again
