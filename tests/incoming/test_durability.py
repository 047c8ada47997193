"""What a caller acknowledges on (250, \\Seen, DELE, 202) survives a power loss, not only a
process crash: the blob's file *and* its name (the directories that gained an entry are
fsynced), and on SQLite — WAL with synchronous=NORMAL, which fsyncs nothing at commit — the
intake spool's rows and the commit of `accept()` and of the spool's mover (synchronous=FULL
for them), and every commit of a process that answers people (the web UI and API).
PostgreSQL commits durably by itself (synchronous_commit)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailroom.core.blobstore.local import LocalBlobStore
from mailroom.incoming import intake
from mailroom.incoming.services import accept


@pytest.fixture
def fsynced(monkeypatch) -> list[Path]:
    """The paths os.fsync was called on (it still runs)."""
    paths: list[Path] = []
    real = os.fsync

    def recording(fd):
        paths.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return paths


@pytest.mark.nodb
def test_a_new_blob_fsyncs_its_file_and_every_directory_that_gained_a_name(tmp_path,
                                                                           fsynced):
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    sha256, _ = store.put_bytes(b"a signed contract", max_bytes=1024)
    target = root / sha256[:2] / sha256[2:4] / sha256
    assert target.read_bytes() == b"a signed contract"
    # the file's data (under its temporary name), each directory that gained a name (the
    # new ones' entries in their parents), last the rename's
    data = [p for p in fsynced if p.name.startswith(".upload-")]
    assert len(data) == 1 and data[0].parent == root
    directories = [p for p in fsynced if p not in data]
    assert set(directories) == {tmp_path, root, root / sha256[:2], target.parent}
    assert fsynced[-1] == target.parent
    assert fsynced.index(data[0]) < len(fsynced) - 1  # the rename's after the data's

    fsynced.clear()  # a second blob in the same directories: its data and its name only
    other, _ = store.put_bytes(b"a signed contract, v2", max_bytes=1024)
    if other[:4] == sha256[:4]:
        assert fsynced[1:] == [target.parent]
    else:
        assert fsynced[-1] == root / other[:2] / other[2:4]
    fsynced.clear()  # the same bytes again: nothing new is written
    store.put_bytes(b"a signed contract", max_bytes=1024)
    assert [p for p in fsynced if p.parent == root / sha256[:2]] == []


@pytest.mark.nodb
def test_a_blob_directory_removed_underneath_is_made_again(tmp_path, fsynced):
    """The store remembers the directories it made; one cleared while it runs is made (and
    made durable) again by the next write, not a failed put."""
    import shutil

    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    first, _ = store.put_bytes(b"before the clean-up", max_bytes=1024)
    shutil.rmtree(root)
    fsynced.clear()
    again, _ = store.put_bytes(b"before the clean-up", max_bytes=1024)
    assert again == first
    assert (root / first[:2] / first[2:4] / first).read_bytes() == b"before the clean-up"
    assert fsynced[-1] == root / first[:2] / first[2:4]  # the new name made durable
    assert root / first[:2] in fsynced  # and the directories made again


def test_the_intake_spool_fsyncs_each_commit(settings, tmp_path):
    settings.MAILROOM_INTAKE_SPOOL_PATH = str(tmp_path / "intake.sqlite3")
    queue = intake.Spool(tmp_path / "intake.sqlite3")
    assert queue.db().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert queue.db().execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.django_db(transaction=True)
def test_accept_commits_its_row_with_a_wal_fsync_on_sqlite(acme):
    with CaptureQueriesContext(connection) as queries:
        mail = accept(b"Subject: hi\r\n\r\nhello\r\n", company=acme, source="api")
    # an executemany is logged as "N times: <sql>"
    sql = [q["sql"].split(" times: ", 1)[-1] for q in queries.captured_queries]
    insert = next(i for i, s in enumerate(sql) if s.startswith('INSERT INTO "incoming_'))
    if connection.vendor == "sqlite":
        assert sql[insert - 1] == "PRAGMA synchronous=FULL"
        assert sql[insert + 1] == "PRAGMA synchronous=NORMAL"  # the rest of the work: NORMAL
    else:  # PostgreSQL: its commit is durable; one INSERT in autocommit, no BEGIN/COMMIT
        assert not any("PRAGMA" in s or s.startswith("SAVEPOINT") for s in sql)
    assert mail.pk


@pytest.mark.django_db(transaction=True)
def test_the_spool_mover_commits_durably_before_the_spool_forgets(acme, settings, tmp_path):
    settings.MAILROOM_INTAKE_SPOOL = "on"
    settings.MAILROOM_INTAKE_SPOOL_PATH = str(tmp_path / "moved.sqlite3")
    from mailroom.incoming.services import accept_spooled

    accept_spooled(b"Subject: hi\r\n\r\nhello\r\n", [(acme, ["sales@acme.test"])],
                   source="smtp")
    with CaptureQueriesContext(connection) as queries:
        assert intake.move() == 1
    # an executemany is logged as "N times: <sql>"
    sql = [q["sql"].split(" times: ", 1)[-1] for q in queries.captured_queries]
    insert = next(i for i, s in enumerate(sql)
                  if s.startswith("INSERT") and '"incoming_inboundmail"' in s.split("(")[0])
    if connection.vendor == "sqlite":
        assert "PRAGMA synchronous=FULL" in sql[:insert]
        assert sql[-1] == "PRAGMA synchronous=NORMAL"


def _row(n: int, company_id: int | None = 1) -> dict:
    return {"company_id": company_id, "source": "smtp", "envelope_from": f"s{n}@client.example",
            "envelope_to": ["sales@acme.test"], "remote_ip": "127.0.0.1", "helo": "mx",
            "raw_sha256": f"{n:064x}", "raw_size": n}


@pytest.mark.nodb
def test_spool_threads_that_arrive_together_commit_together_and_each_gets_its_own_ids(
        tmp_path):
    queue = intake.Spool(tmp_path / "group.sqlite3")
    results: dict[int, list[int]] = {}
    start = threading.Barrier(8)

    def sender(worker: int) -> None:
        start.wait()
        for n in range(40):
            number = worker * 1000 + n
            results[number] = queue.add([_row(number), _row(number)])  # two companies' rows

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 320 and all(len(ids) == 2 for ids in results.values())
    ids = [i for pair in results.values() for i in pair]
    assert len(set(ids)) == 640
    rows = dict(queue.db().execute("SELECT id, raw_size FROM spool").fetchall())
    assert all(rows[a] == rows[b] == number for number, (a, b) in results.items())
    assert queue.commits < 320  # groups formed: fewer WAL fsyncs than messages


@pytest.mark.nodb
def test_a_group_that_fails_writes_nothing_and_the_next_add_commits(tmp_path):
    queue = intake.Spool(tmp_path / "failing.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):  # NOT NULL: the whole group is refused
        queue.add([_row(1), _row(2, company_id=None)])
    assert queue.count() == 0
    assert len(queue.add([_row(3)])) == 1 and queue.count() == 1


@pytest.fixture
def acknowledging(transactional_db):
    from mailroom.core import durability

    try:
        durability.acknowledge_every_commit()
        yield connection
    finally:  # the rest of the suite runs as workers do
        durability._level = "NORMAL"
        durability.connection_created.disconnect(dispatch_uid="mailroom.durability.full")
        durability._apply(connection.vendor, connection)


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="PostgreSQL commits durably")
def test_a_process_that_answers_people_commits_everything_with_a_wal_fsync(acknowledging,
                                                                           acme):
    """`mailroom web` and the WSGI module: what the UI or the API says is saved (a campaign
    scheduled, a letter queued) survives a power loss; durable_commit leaves it so."""
    from mailroom.core.durability import durable_commit

    connection = acknowledging
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone() == (2,)  # FULL
    with CaptureQueriesContext(connection) as queries, durable_commit():
        accept(b"Subject: hi\r\n\r\nhello", company=acme, source="api")
    assert not [q for q in queries.captured_queries if "synchronous" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone() == (2,)


@pytest.mark.slow
def test_the_wsgi_module_turns_it_on(tmp_path):
    from tests import premigrated
    from tests.core.test_processes import REPO, mailroom_env

    code = ("import mailroom.wsgi\nfrom django.db import connection\n"
            "with connection.cursor() as c:\n    c.execute('PRAGMA synchronous')\n"
            "    print('LEVEL', c.fetchone()[0])\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120,
                          env=mailroom_env(tmp_path, premigrated.sqlite_url(tmp_path / "w.db")))
    assert "LEVEL 2" in done.stdout, done.stdout + done.stderr
