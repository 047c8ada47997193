"""The router: every received message goes through small ordered rules until one decides.

    duplicate → command → bounce → loop → thread → alias → fallback → security → post

Each rule (one module in `router/rules/`) reads the Context and either returns an Outcome
(the decision) or notes what it learnt and lets the next rule go on. Every rule's verdict is
written to the message's trace, so the inbound log shows why a message went where it went.
A message whose routing raises is quarantined with the error, never lost: Reprocess sends it
through again. `dry_run` runs the same rules on a made-up message inside a transaction that
is rolled back, for the "Test an address" screen.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.utils import timezone

from mailroom.core import contention, saving
from mailroom.core.blobs import BlobError
from mailroom.core.turns import writer_turn
from mailroom.incoming.models import ONE_ROUTING_PER_MESSAGE_ID, InboundMail
from mailroom.incoming.refusals import send_refusal
from mailroom.incoming.router import facts
from mailroom.incoming.router.context import Context, Outcome
from mailroom.incoming.router.rules import (
    alias,
    bounce,
    command,
    duplicate,
    fallback,
    loop,
    post,
    security,
    thread,
)
from mailroom.incoming.services import raw_bytes
from mailroom.lib import inbound

log = logging.getLogger("mailroom.incoming.router")

RULES = [
    ("duplicate", duplicate.apply),
    ("command", command.apply),  # unsubscribe+<token>@…: routing.commands
    ("bounce", bounce.apply),
    ("loop", loop.apply),
    ("thread", thread.apply),
    ("alias", alias.apply),
    ("fallback", fallback.apply),
    ("security", security.apply),
    ("post", post.apply),
]

BATCH = 50
# Messages of a batch are applied in one transaction per CHUNK (a message that fails rolls
# its chunk back, which is then routed message by message): a commit per message cost about
# 7% of routing's CPU on SQLite, 5% on PostgreSQL (measured in alternating runs; the write-
# lock handover, the WAL flush). A chunk is closed after CHUNK messages or CHUNK_SECONDS, so
# the transaction stays short (on SQLite it holds the one write lock the UI and the intake
# mover need too), and on PostgreSQL right after a message that took a lock every router
# waits for (core.contention: a new ticket's number), which two routers otherwise took in
# turns, chunk by chunk.
CHUNK = 25
CHUNK_SECONDS = 0.25
# A claimed batch is leased for LEASE and renewed every HEARTBEAT while it is routed (one
# message takes at most MAILROOM_INBOUND_MAX_SECONDS): a long batch keeps its messages, and
# those of a worker that died are routed by another within about a minute.
LEASE = timedelta(seconds=60)
HEARTBEAT = 15.0
MAX_TRANSIENT_ATTEMPTS = 5


# --- running the rules -----------------------------------------------------------------------

class RoutingTimeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    """Bound one message's routing where we can (the worker's main thread)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expired(signum, frame):
        raise RoutingTimeout(f"Routing took longer than {seconds:g} s.")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_rules(ctx: Context) -> Outcome:
    for name, rule in RULES:
        seen = len(ctx.trace)
        outcome = rule(ctx)
        if outcome is None and not any(step["rule"] == name for step in ctx.trace[seen:]):
            ctx.trace.append({"rule": name, "note": "Passed: nothing for this rule."})
        if outcome is not None:
            ctx.trace.append({"rule": name, "decision": outcome.decision,
                              "note": outcome.reason[:500]})
            return outcome
    raise RuntimeError("no rule decided")  # post always decides


def route(mail: InboundMail, *, ctx: Context | None = None, again: bool = True
          ) -> InboundMail:
    """Route one stored message and record the decision (or quarantine it). `ctx`: its
    Context when the batch already read it (route_pending), with the batch's facts; one
    message alone is a batch of one. A copy of a message that another router routed at the
    same moment fails the one-routing-per-Message-ID constraint (the other committed first):
    routed `again`, the duplicate rule now sees the other copy."""
    if ctx is None:
        ctx = _read_batch([mail]).get(mail.pk)
    if ctx is None:  # too large to keep, or unreadable
        try:
            raw = raw_bytes(mail)
        except BlobError as exc:
            if exc.kind != "missing":  # the bucket is down or refuses: try again later
                return _transient(mail, exc)
            return _quarantine(mail, f"The stored message cannot be read: {exc}", [])
        except OSError as exc:
            return _quarantine(mail, f"The stored message cannot be read: {exc}", [])
        ctx = Context(mail, raw)
    budget = float(getattr(settings, "MAILROOM_INBOUND_MAX_SECONDS", 20.0))
    committed = False
    try:
        with _time_limit(budget):
            ctx.prepare()  # parsing and DNS, outside the write transaction
            with writer_turn(), transaction.atomic():
                outcome = run_rules(ctx)
                _finish(ctx, outcome)
            committed = True
    except OperationalError as exc:  # the database is busy or gone: try again later
        return _transient(mail, exc)
    except (inbound.InboundError, RoutingTimeout) as exc:
        return _quarantine(mail, str(exc), ctx.trace, ctx)
    except Exception as exc:
        if isinstance(exc, IntegrityError) and routed_twice(exc):  # another copy won
            return route(_refreshed(mail), again=False) if again else _transient(mail, exc)
        log.exception("router: message %s failed", mail.pk)
        return _quarantine(mail, f"{type(exc).__name__}: {exc}", ctx.trace, ctx)
    finally:
        if ctx.facts is not None:
            ctx.facts.routed(ctx, committed=committed)
    return mail


def routed_twice(exc: IntegrityError) -> bool:
    """The one-routing-per-Message-ID constraint failed: PostgreSQL names it, SQLite names
    its columns."""
    text = str(exc)
    return ONE_ROUTING_PER_MESSAGE_ID in text or (
        "incoming_inboundmail.company_id, incoming_inboundmail.message_id" in text)


def _header_fields(ctx: Context) -> dict:
    try:
        head = ctx.head
    except inbound.InboundError:
        return {}
    return {"message_id": head.message_id[:998], "from_address": ctx.sender[:320],
            "subject": head.subject[:998]}


def _finish(ctx: Context, outcome: Outcome) -> None:
    mail = ctx.mail
    record = outcome.record
    if outcome.refuse_with_reply and not ctx.automatic:
        mail.bounce_reply = send_refusal(ctx, outcome.reason)
    fields = dict(
        _header_fields(ctx), state=InboundMail.State.DONE, decision=outcome.decision,
        rule=ctx.trace[-1]["rule"], reason=outcome.reason, trace=ctx.trace,
        is_automatic=bool(ctx.automatic), auth_summary=mail.auth_summary, error="",
        content_type=(ContentType.objects.get_for_model(record, for_concrete_model=True)
                      if record is not None else None),
        object_id=record.pk if record is not None else None,
        chatter_message=outcome.message, bounce_reply=mail.bounce_reply,
        processed_at=timezone.now(), lease_owner="", lease_expires_at=None,
        attempts=mail.attempts + 1)
    for name, value in fields.items():
        setattr(mail, name, value)
    if not ctx.dry:
        saving.update(mail, fields)  # mail.save(update_fields=…), the UPDATE built once


def _quarantine(mail: InboundMail, error: str, trace: list, ctx: Context | None = None
                ) -> InboundMail:
    mail.refresh_from_db()
    fields = dict(_header_fields(ctx) if ctx else {}, state=InboundMail.State.QUARANTINED,
                  error=error[:5000], trace=trace, processed_at=timezone.now(),
                  lease_owner="", lease_expires_at=None, attempts=mail.attempts + 1,
                  decision="", rule=trace[-1]["rule"] if trace else "",
                  reason="Quarantined: " + error[:300])
    InboundMail.objects.filter(pk=mail.pk).update(**fields)
    for name, value in fields.items():
        setattr(mail, name, value)
    return mail


def _transient(mail: InboundMail, exc: Exception) -> InboundMail:
    """Try again later (10 s, 20 s, … after each attempt); quarantined, with the reason, when
    the database or the blob store kept failing MAX_TRANSIENT_ATTEMPTS times."""
    attempts = mail.attempts + 1
    if attempts >= MAX_TRANSIENT_ATTEMPTS:
        what = "blob store" if isinstance(exc, BlobError) else "database"
        return _quarantine(mail, f"The {what} kept failing: {exc}", [])
    InboundMail.objects.filter(pk=mail.pk).update(
        attempts=attempts, lease_owner="",
        lease_expires_at=timezone.now() + timedelta(seconds=10 * attempts), error=str(exc))
    return mail


# --- the worker step -------------------------------------------------------------------------

def claim(worker_name: str, limit: int = BATCH) -> list[InboundMail]:
    """Lease up to `limit` waiting messages to this worker (committed on return)."""
    now = timezone.now()
    due = InboundMail.objects.filter(state=InboundMail.State.RECEIVED).filter(
        models.Q(lease_expires_at__isnull=True) | models.Q(lease_expires_at__lte=now))
    if not due.exists():
        return []
    with writer_turn(), transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("received_at", "id").values_list("id", flat=True)[:limit])
        if ids:
            InboundMail.objects.filter(pk__in=ids).update(lease_owner=worker_name[:100],
                                                          lease_expires_at=now + LEASE)
    return list(InboundMail.objects.filter(pk__in=ids).select_related("server", "company")
                .order_by("received_at", "id"))


def renew(worker_name: str, ids: list[int]) -> set[int]:
    """Extend the lease of the messages among `ids` still leased to `worker_name` and not yet
    routed; returns those ids (one short transaction; a busy database keeps them all for now,
    their lease has not run out yet)."""
    mine = InboundMail.objects.filter(pk__in=ids, state=InboundMail.State.RECEIVED,
                                      lease_owner=worker_name[:100])
    try:
        with transaction.atomic():
            count = mine.update(lease_expires_at=timezone.now() + LEASE)
            if count == len(ids):
                return set(ids)
            return set(mine.values_list("pk", flat=True))
    except OperationalError as exc:
        log.warning("router %s: could not renew its leases (%s)", worker_name, exc)
        return set(ids)


def route_pending(worker_name: str = "router", limit: int | None = None) -> int:
    """Route what is waiting (one batch, or up to `limit`); returns how many were routed."""
    done = 0
    while limit is None or done < limit:
        batch = claim(worker_name, min(BATCH, limit - done) if limit else BATCH)
        if not batch:
            break
        contexts = _read_batch(batch)
        facts = next((c.facts for c in contexts.values() if c.facts is not None), None)
        beaten, ours = time.monotonic(), {m.pk for m in batch}
        index = 0
        while index < len(batch):
            if time.monotonic() - beaten >= HEARTBEAT:
                beaten = time.monotonic()
                ours = renew(worker_name, [m.pk for m in batch[index:]])
            chunk = [m for m in batch[index:index + CHUNK] if m.pk in ours]
            index += CHUNK  # the others' lease ran out: another worker has them (or routed)
            done += _route_chunk(chunk, contexts, facts)
        if limit is None:
            break
    return done


def _route_chunk(chunk: list[InboundMail], contexts: dict[int, Context], facts) -> int:
    """Route `chunk` in order, runs of it in one transaction each (_route_together: a
    failure routes that transaction's messages again one by one). What needs no database is
    done first, outside the transaction (parse, DNS: Context.prepare); a message too large
    to read ahead, or that could not be prepared in time, is routed in a transaction of its
    own, in its place."""
    budget = float(getattr(settings, "MAILROOM_INBOUND_MAX_SECONDS", 20.0))
    done, run = 0, []
    for mail in chunk:
        ctx = contexts.pop(mail.pk, None)
        if ctx is not None:
            try:
                with _time_limit(budget):
                    ctx.prepare()
                run.append((mail, ctx))
                continue
            except Exception:  # route() meets it again, alone, and says what it was
                pass
        done += _route_run(run, facts)
        run = []
        _route_alone(mail, facts)
        done += 1
    return done + _route_run(run, facts)


def _route_run(run: list[tuple[InboundMail, Context]], facts) -> int:
    done = 0
    while run:
        routed, redo, run = _route_together(run)
        done += routed
        for mail in redo:  # rolled back together: each on its own
            _route_alone(mail, facts)
            done += 1
    return done


def _route_alone(mail: InboundMail, facts) -> None:
    """Route one message in a transaction of its own, with facts of its own; the batch's
    facts then cover no further message (what this one did is not known to them)."""
    if facts is not None:
        facts.forget()
    route(mail)


class _ChunkFailed(Exception):
    """A message failed in a chunk's transaction, which is then rolled back."""


def _route_together(run: list[tuple[InboundMail, Context]]
                    ) -> tuple[int, list[InboundMail], list[tuple[InboundMail, Context]]]:
    """Route the first of `run` in one transaction until CHUNK_SECONDS have passed: (how
    many, [], the rest). When a message fails, or the commit does: (0, the messages of the
    transaction as the database has them, to route one by one, the rest). Nothing of the
    transaction holds (what the batch's facts counted is undone with it, so its messages
    routed alone make the facts forget).

    The messages have no savepoint each (two round trips per message on PostgreSQL, and
    Django's bookkeeping on both): a failure rolls the chunk back, and routed alone the
    failing message is quarantined by itself. What usually fails, a message that cannot be
    parsed, already failed in Context.prepare() and is routed alone before this."""
    started, done = time.monotonic(), 0
    try:
        with writer_turn(), transaction.atomic():
            hot = contention.count()
            for mail, ctx in run:
                if done and time.monotonic() - started >= CHUNK_SECONDS:
                    break  # the transaction stays short: the rest in the next one
                done += 1
                _apply(mail, ctx)
                if contention.count() != hot:
                    break  # it took a lock other routers wait for (a new ticket's number)
    except (DatabaseError, _ChunkFailed) as exc:  # a message failed, or the commit did
        log.warning("router: %d messages routed in one transaction were rolled back (%s); "
                    "routing them one by one", done, exc)
        return 0, [_refreshed(mail) for mail, _ in run[:done]], run[done:]
    return done, [], run[done:]


def _apply(mail: InboundMail, ctx: Context) -> None:
    """route() for a message of a chunk: in the chunk's transaction, raising what fails."""
    budget = float(getattr(settings, "MAILROOM_INBOUND_MAX_SECONDS", 20.0))
    applied = False
    try:
        with _time_limit(budget):
            outcome = run_rules(ctx)
            _finish(ctx, outcome)
        applied = True
    except Exception as exc:
        raise _ChunkFailed(f"message {mail.pk}: {type(exc).__name__}: {exc}") from exc
    finally:
        if ctx.facts is not None:
            ctx.facts.routed(ctx, committed=applied)


def _refreshed(mail: InboundMail) -> InboundMail:
    """`mail` as the database has it (a rolled-back chunk left its fields set in memory)."""
    try:
        mail.refresh_from_db()
    except (InboundMail.DoesNotExist, DatabaseError):
        pass  # route() stores what it decides, or quarantines it with the reason
    return mail


def _read_batch(batch: list[InboundMail]) -> dict[int, Context]:
    """The Contexts of the batch's messages small enough to keep in memory, with the facts
    their rules would each ask the database for, read once (facts.BatchFacts)."""
    contexts = {}
    for mail in batch:
        if mail.raw_size > facts.KEEP_BYTES:
            continue  # read when routed, with the rules' own queries
        try:
            contexts[mail.pk] = Context(mail, raw_bytes(mail))
        except (BlobError, OSError):
            continue  # route() reads it again and says why (quarantine, or later)
    if contexts:
        try:
            ahead = facts.BatchFacts(list(contexts.values()),
                                     flood_minutes=loop.flood_limit()[1])
        except OperationalError as exc:  # a busy database: each message asks for itself
            log.warning("router: could not read the batch's facts ahead (%s)", exc)
            return contexts
        except Exception:  # never one message holding its batch: each asks for itself
            log.exception("router: could not read the batch's facts ahead")
            return contexts
        for ctx in contexts.values():
            ctx.facts = ahead
    return contexts


# --- "Test an address" -----------------------------------------------------------------------

def dry_run(*, company, sender: str, recipient: str, subject: str = "Test",
            headers: dict[str, str] | None = None, body: str = "Hello") -> Context:
    """Route a made-up message from `sender` to `recipient` and roll everything back."""
    lines = [f"From: {sender}", f"To: {recipient}", f"Subject: {subject}",
             f"Date: {formatdate()}", f"Message-ID: {make_msgid(domain='dry-run.invalid')}",
             *(f"{k}: {v}" for k, v in (headers or {}).items()),
             "Content-Type: text/plain; charset=utf-8", "", body]
    raw = "\r\n".join(lines).encode()
    mail = InboundMail(company=company, source=InboundMail.Source.API, envelope_from=sender,
                       envelope_to=[recipient], raw_sha256="", raw_size=len(raw))
    ctx = Context(mail, raw, dry=True)
    with transaction.atomic():
        try:
            _finish(ctx, run_rules(ctx))
        except Exception as exc:
            ctx.trace.append({"rule": ctx.trace[-1]["rule"] if ctx.trace else "router",
                              "decision": "quarantined", "note": str(exc)[:500]})
        transaction.set_rollback(True)
    return ctx
