"""One connection's work in a sender pass (a Lane), run in a thread: no database access here.

A lane sends its jobs one after the other over one pooled connection, one SMTP transaction
per recipient (the VERP envelope sender names the recipient). What a server answers becomes
a per-recipient result. What goes wrong on Mailroom's side stays with the mail it happened
on: any exception while sending one recipient fails that recipient with a reason (the
connection is dropped, since its state is unknown), any exception around a whole job fails
that job's remaining recipients, both with an attempt row; the lane then carries on with the
next mail on a fresh connection. Only SmtpError (the server cannot be used) stops a lane, so
that its mails fail over to another server.
"""

from __future__ import annotations

import logging
import time

from django.utils import timezone

from mailroom.outgoing.models import FailureType
from mailroom.outgoing.sending.jobs import Job, Lane, attempt_row, broken_reason
from mailroom.outgoing.smtp.pool import ConnectionPool
from mailroom.outgoing.smtp.smtp_errors import SENDER, RecipientResult, SmtpError
from mailroom.outgoing.smtp.tls import SslContextSource
from mailroom.outgoing.smtp.transport import SmtpConnection

log = logging.getLogger("mailroom.sender")


class LaneRunner:
    """The sending half of the Sender (mixed into it): pool, timeouts, TLS and its name."""

    owner: str
    pool: ConnectionPool
    timeout: float
    ssl_context: SslContextSource

    def _run_lane(self, lane: Lane, deadline: float) -> None:
        connection_ = None
        try:
            for index, job in enumerate(lane.jobs):
                if time.monotonic() > deadline:
                    lane.unattempted += lane.jobs[index:]
                    return
                try:
                    connection_ = self._send_job(lane, job, connection_)
                except SmtpError as exc:  # the server cannot be used (now)
                    lane.error = exc
                    lane.unattempted += lane.jobs[index + (1 if job.attempted else 0):]
                    return
        except Exception as exc:  # a bug outside any one mail: the rest waits for a pass
            log.exception("sender: connection to %s failed unexpectedly", lane.server.name)
            for job in lane.jobs:
                if not job.attempted:
                    job.defer(FailureType.UNKNOWN, broken_reason(exc))
        finally:
            if connection_ is not None:
                self.pool.give(connection_)

    def _connect(self, lane: Lane) -> tuple[SmtpConnection, bool]:
        pooled = self.pool.take(lane.server)
        if pooled is not None:
            lane.opened = True
            return pooled, True
        fresh = SmtpConnection(lane.server, timeout=self.timeout, ssl_context=self.ssl_context,
                               oauth_token=lane.token)
        fresh.open()  # SmtpError: the caller fails over
        lane.opened = True
        return fresh, False

    def _send_job(self, lane: Lane, job: Job,
                  conn: SmtpConnection | None) -> SmtpConnection | None:
        """Send `job` to each pending recipient. Raises SmtpError when no connection can be
        opened at all; any other exception fails this job alone."""
        started = timezone.now()
        try:
            return self._send_recipients(lane, job, conn)
        except SmtpError:
            raise
        except Exception as exc:
            log.exception("sender: mail %s failed unexpectedly", job.mail.pk)
            job.broke(broken_reason(exc), lane.server)
            return None  # whatever connection it had is in an unknown state
        finally:
            if job.attempted:
                job.attempts.append(attempt_row(job, lane.server, started, job.spent_ms,
                                                self.owner))

    def _send_recipients(self, lane: Lane, job: Job,
                         conn: SmtpConnection | None) -> SmtpConnection | None:
        server = lane.server
        pending = job.pending
        reused = False
        index = 0
        while index < len(pending):
            recipient = pending[index]
            if conn is None:
                try:
                    conn, reused = self._connect(lane)
                except SmtpError as exc:
                    if not job.attempted:
                        raise
                    for rest in pending[index:]:
                        job.results[rest.pk] = RecipientResult(
                            rest.address, False, temporary=True,
                            failure_type=exc.failure_type, reason=exc.message)
                    raise
            job.attempted, job.used_server = True, server
            try:
                result = conn.send(job.envelopes[recipient.pk], [recipient.address], job.raw,
                                   utf8_raw=job.utf8_raw)
            except SmtpError as exc:
                conn = None
                if reused and exc.stage == SENDER:
                    reused = False  # a pooled connection the server had dropped: reconnect
                    continue
                job.results[recipient.pk] = RecipientResult(
                    recipient.address, False, temporary=True, failure_type=exc.failure_type,
                    reason=exc.message)
                index += 1
                continue
            except Exception as exc:  # ours, not the server's: this recipient fails alone
                log.exception("sender: mail %s to %s failed unexpectedly", job.mail.pk,
                              recipient.address)
                conn.close()
                conn = None
                job.results[recipient.pk] = RecipientResult(
                    recipient.address, False, failure_type=FailureType.UNKNOWN,
                    reason=broken_reason(exc, recipient.address))
                index += 1
                continue
            reused = False
            job.spent_ms += result.duration_ms
            job.results[recipient.pk] = result.recipients[0]
            if conn.is_open and conn.messages_sent >= server.max_per_connection:
                conn.close()
            if not conn.is_open:
                conn = None
            index += 1
        return conn
