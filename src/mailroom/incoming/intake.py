"""The intake spool: on SQLite, what the gateway accepts waits in a file of its own until a
router moves it into the database.

Why: SQLite has one write lock per database file. The router holds it while it applies a
decision, and a writer that finds it taken sleeps on SQLite's back-off (1, 2, 5 … 100 ms)
instead of being woken, so the gateway's one-row insert waited behind routing and accepted
only as fast as the routers routed. The spool is a second file whose lock only the gateway's
short inserts and the mover's delete take, so accepting never waits on routing. The message
itself is in the blob store before its spool row commits, and the row commits before the 250.

The mover (`move`, run by every router step) copies a batch into InboundMail in one
transaction, then deletes it from the spool. Each row carries `intake:<spool>:<id>` as its
source key (unique in InboundMail): a mover that dies between the two steps moves the same
rows again and the database keeps the first copy. Rows are moved in the order received.

PostgreSQL needs none of this (row locks; the gateway inserts directly), nor do in-memory
SQLite databases (tests), which another process could not read anyway: `enabled()` says
when the spool is used, `MAILROOM_INTAKE_SPOOL` (auto / on / off) overrides.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.db import IntegrityError, connection, transaction

from mailroom.core import saving
from mailroom.core.durability import durable_commit
from mailroom.core.models import Company
from mailroom.core.turns import writer_turn
from mailroom.incoming.models import InboundMail

log = logging.getLogger("mailroom.intake")

BATCH = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    remote_ip TEXT,
    helo TEXT NOT NULL,
    raw_sha256 TEXT NOT NULL,
    raw_size INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def enabled() -> bool:
    mode = str(getattr(settings, "MAILROOM_INTAKE_SPOOL", "auto")).lower()
    if mode in ("on", "1", "true", "yes"):
        return True
    if mode in ("off", "0", "false", "no"):
        return False
    return connection.vendor == "sqlite" and not connection.is_in_memory_db()


def path() -> Path:
    return Path(getattr(settings, "MAILROOM_INTAKE_SPOOL_PATH", "")
                or Path(settings.DATA_DIR) / "intake.sqlite3")


class _Request:
    """One `add` waiting for a group commit: its rows, then its ids or the error."""

    __slots__ = ("done", "error", "ids", "rows")

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.done = False
        self.ids: list[int] = []
        self.error: BaseException | None = None


class Spool:
    """One connection per thread to the spool file (created on first use).

    `add` commits in groups: each commit fsyncs the WAL (synchronous=FULL), so the gateway's
    threads that arrive while one commits wait for it and then go in together, the first of
    them writing everyone's rows in one transaction (one fsync for all). Each caller returns
    only when its own rows are committed, or with the error that stopped their group."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.local = threading.local()
        self._token: str | None = None
        self._group = threading.Condition()
        self._queue: list[_Request] = []
        self._committing = False
        self.commits = 0  # transactions `add` ran (fewer than calls when they group)

    def db(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.file, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit fsyncs the WAL, so a row the gateway answered 250 for
            # survives a power loss too (NORMAL, as the main database, only a process crash)
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self.local.conn = conn
        return conn

    @property
    def token(self) -> str:
        """This spool file's own name, part of every source key (ids restart in a new file)."""
        if self._token is None:
            db = self.db()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
                if row is None:
                    row = (secrets.token_hex(8),)
                    db.execute("INSERT INTO meta (key, value) VALUES ('token', ?)", row)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._token = row[0]
        return self._token

    def add(self, rows: list[dict]) -> list[int]:
        """Write `rows` (one per company of a message) in one transaction — shared with the
        other threads' rows that wait at the same moment; their ids, once committed."""
        request = _Request(rows)
        with self._group:
            self._queue.append(request)
            while not request.done and self._committing:
                self._group.wait()
            if request.done:  # another thread's commit took it
                return self._result(request)
            self._committing = True
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._group:
                self._committing = False
                self._group.notify_all()
        return self._result(request)

    @staticmethod
    def _result(request: _Request) -> list[int]:
        if request.error is not None:
            raise request.error
        return request.ids

    def _commit(self, batch: list[_Request]) -> None:
        db = self.db()
        now = datetime.now(UTC).isoformat()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for request in batch:
                    request.ids = [int(db.execute(
                        "INSERT INTO spool (company_id, source, envelope_from, envelope_to,"
                        " remote_ip, helo, raw_sha256, raw_size, received_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?)",
                        (row["company_id"], row["source"], row["envelope_from"],
                         json.dumps(row["envelope_to"]), row["remote_ip"], row["helo"],
                         row["raw_sha256"], row["raw_size"], now)).lastrowid)
                        for row in request.rows]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except BaseException as exc:  # nothing of the group was written: each caller says so
            for request in batch:
                request.ids, request.error = [], exc
        finally:
            for request in batch:
                request.done = True
            self.commits += 1

    def waiting(self, limit: int) -> list[tuple]:
        return self.db().execute(
            "SELECT id, company_id, source, envelope_from, envelope_to, remote_ip, helo,"
            " raw_sha256, raw_size, received_at FROM spool ORDER BY id LIMIT ?",
            (limit,)).fetchall()

    def remove(self, ids: list[int]) -> None:
        db = self.db()
        for first in range(0, len(ids), 500):
            chunk = ids[first:first + 500]
            db.execute(f"DELETE FROM spool WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def count(self) -> int:
        return self.db().execute("SELECT COUNT(*) FROM spool").fetchone()[0]

    def waiting_for(self, company_ids: list[int] | None) -> tuple[int, datetime | None]:
        """How many messages of `company_ids` (None: all) wait here, and since when (the
        oldest)."""
        query = "SELECT COUNT(*), MIN(received_at) FROM spool"
        if company_ids is not None:
            query += f" WHERE company_id IN ({','.join('?' * len(company_ids))})"
        count, oldest = self.db().execute(query, list(company_ids or ())).fetchone()
        return count, datetime.fromisoformat(oldest) if oldest else None


_spools: dict[Path, Spool] = {}
_lock = threading.Lock()


_current: Spool | None = None  # the spool of the settings as they are


def _forget(*, setting: str, **kwargs) -> None:
    global _current
    if setting in ("MAILROOM_INTAKE_SPOOL_PATH", "DATA_DIR"):
        _current = None


setting_changed.connect(_forget, dispatch_uid="mailroom.intake.settings")


def spool() -> Spool:
    """The spool of this process's settings, found once (building its path on every accepted
    message was a twentieth of the gateway's work)."""
    global _current
    found = _current
    if found is not None:
        return found
    file = path()
    with _lock:
        if file not in _spools:
            _spools[file] = Spool(file)
        _current = _spools[file]
        return _current


def waiting(company_ids: int | list[int] | None) -> tuple[int, datetime | None]:
    """What the inbound log says is not in it yet: the spooled messages of a company, of
    several, or (None) of all (count, oldest arrival); (0, None) where there is no spool."""
    if not enabled() or not path().exists():
        return 0, None
    if isinstance(company_ids, int):
        company_ids = [company_ids]
    if company_ids is not None and not company_ids:
        return 0, None
    return spool().waiting_for(company_ids)


def move(limit: int = BATCH) -> int:
    """Move up to `limit` spooled messages into InboundMail (then off the spool); how many.

    One mover at a time (the writer's turn, taken before the spool is read): two routers
    that read the same rows each inserted them, the second copy ignored, and the mover's
    work was done twice."""
    if not enabled() or not path().exists():
        return 0
    queue = spool()
    if not queue.waiting(1):  # nothing to move: no need to wait for the turn
        return 0
    with writer_turn():
        rows = queue.waiting(limit)  # again in the turn: another mover may have taken them
        if not rows:
            return 0
        known = set(Company.objects.filter(pk__in={r[1] for r in rows})
                    .values_list("pk", flat=True))
        token = queue.token
        mails = []
        for (spool_id, company_id, source, sender, to, ip, helo, sha, size, at) in rows:
            if company_id not in known:  # deleted while its mail waited: its mail goes too
                log.error("intake: spooled message %s names company %s, which no longer "
                          "exists; it is dropped", spool_id, company_id)
                continue
            mails.append(InboundMail(
                company_id=company_id, source=source, envelope_from=sender,
                envelope_to=json.loads(to), remote_ip=ip, helo=helo, raw_sha256=sha,
                raw_size=size, received_at=datetime.fromisoformat(at),
                source_key=f"intake:{token}:{spool_id}"))
        try:  # durable before the spool forgets them: a power loss must not lose both copies
            with durable_commit(), transaction.atomic():
                saving.insert_many(mails, ignore_conflicts=True)
        except IntegrityError:  # pragma: no cover — ignore_conflicts covers the source keys
            log.exception("intake: moving %d spooled messages failed", len(mails))
            return 0
        queue.remove([r[0] for r in rows])
    return len(rows)
