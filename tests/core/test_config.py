"""Configuration: generated secrets, environment precedence and the SQLite defaults."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from cryptography.fernet import Fernet

from mailroom import config
from tests.conftest import NEEDS_POSTGRES


def test_secrets_are_generated_on_first_start_with_mode_0600_and_reused(tmp_path):
    first = config.load({"MAILROOM_DATA_DIR": str(tmp_path)})
    for name in ("secret_key", "fernet.key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert len(first.secret_key) >= 50
    Fernet(first.fernet_keys[0])  # a usable key

    second = config.load({"MAILROOM_DATA_DIR": str(tmp_path)})
    assert second.secret_key == first.secret_key
    assert second.fernet_keys == first.fernet_keys


def test_environment_values_win(tmp_path):
    keys = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    cfg = config.load({
        "MAILROOM_DATA_DIR": str(tmp_path),
        "MAILROOM_SECRET_KEY": "from-the-environment",
        "MAILROOM_FERNET_KEYS": ",".join(keys),
        "MAILROOM_DATABASE_URL": "postgres://mailroom@db.internal/mailroom",
        "MAILROOM_BASE_URL": "https://mail.example.com/",
        "MAILROOM_ALLOWED_HOSTS": "mail.example.com, localhost",
        "MAILROOM_DEBUG": "yes",
        "MAILROOM_LOG_LEVEL": "debug",
    })
    assert cfg.secret_key == "from-the-environment"
    assert cfg.fernet_keys == keys
    assert cfg.database_url == "postgres://mailroom@db.internal/mailroom"
    assert not cfg.is_sqlite
    assert cfg.base_url == "https://mail.example.com"
    assert cfg.allowed_hosts == ["mail.example.com", "localhost"]
    assert cfg.debug is True and cfg.log_level == "DEBUG"
    # nothing generated when the environment provides the secrets
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "fernet.key").exists()


def test_a_stored_secret_is_not_overwritten_by_a_later_start(tmp_path):
    (tmp_path / "secret_key").write_text("kept-from-before\n")
    assert config.load({"MAILROOM_DATA_DIR": str(tmp_path)}).secret_key == "kept-from-before"


def test_sqlite_is_the_default_database_in_the_data_dir(tmp_path):
    cfg = config.load({"MAILROOM_DATA_DIR": str(tmp_path / "data")})
    assert cfg.is_sqlite
    assert cfg.database_url == f"sqlite:///{tmp_path / 'data' / 'mailroom.sqlite3'}"
    assert (tmp_path / "data").is_dir()


def sqlite_settings(path):
    from mailroom.settings import _database

    return _database(f"sqlite:///{path}")


def test_sqlite_options(tmp_path):
    db = sqlite_settings(tmp_path / "x.sqlite3")
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] >= 5


def test_postgresql_binds_parameters_on_the_server_unless_the_url_says_not_to():
    from mailroom.settings import _database

    db = _database("postgres://mailroom@db.internal:5432/mailroom")
    assert db["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}
    assert db["CONN_MAX_AGE"] == 60
    behind_pgbouncer = _database("postgres://m@pgbouncer:6432/m?server_side_binding=false")
    assert behind_pgbouncer["OPTIONS"] == {"server_side_binding": False}  # nothing prepared


@NEEDS_POSTGRES
def test_a_postgresql_connection_binds_on_the_server_and_prepares_what_it_repeats(
        django_db_blocker):
    """A connection made from the settings Mailroom derives from a PostgreSQL URL binds
    parameters on the server and, for a statement run 5 times, has it prepared there: what
    the router's speed on PostgreSQL counts on. Run on both passes, against the test server."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    from mailroom.settings import _database
    from tests.core.test_processes import postgres_admin_url

    db = _database(postgres_admin_url())
    db.update(TIME_ZONE=None, AUTOCOMMIT=True, ATOMIC_REQUESTS=False, TEST={})
    wrapper = DatabaseWrapper(db, alias="prepared-check")
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            assert type(cursor.cursor).__name__ == "ServerBindingCursor"  # not a ClientCursor
            for _ in range(6):
                cursor.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ["x"])
            cursor.execute("SELECT count(*) FROM pg_prepared_statements "
                           "WHERE statement LIKE %s", ["%pg_class WHERE relname%"])
            assert cursor.fetchone()[0] == 1
    finally:
        wrapper.close()


@pytest.fixture
def fresh_sqlite(tmp_path, django_db_blocker):
    """A Django connection to a brand-new SQLite file, set up exactly as settings do,
    reachable as `connections["fresh"]` so `transaction.atomic(using="fresh")` uses it."""
    from django.db import connections
    from django.db.utils import ConnectionHandler

    path = tmp_path / "fresh.sqlite3"
    db = sqlite_settings(path)
    connection = ConnectionHandler({"default": db, "fresh": db})["fresh"]
    connections["fresh"] = connection
    try:
        with django_db_blocker.unblock():
            yield connection, path
    finally:
        connection.close()
        del connections["fresh"]


def test_wal_is_active_on_a_fresh_connection(fresh_sqlite):
    connection, path = fresh_sqlite
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1
    # WAL is a property of the file: a plain connection sees it too
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_database_and_its_wal_files_are_private(tmp_path):
    """Keys and blobs are 0600; the database holding the same secrets was 0644."""
    import os

    path = tmp_path / "data" / "mailroom.sqlite3"
    old = os.umask(0o022)
    try:
        db = sqlite_settings(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        connection = sqlite3.connect(path)
        connection.execute(db["OPTIONS"]["init_command"].split(";")[0])  # journal_mode=WAL
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
        for name in (path, tmp_path / "data" / "mailroom.sqlite3-wal",
                     tmp_path / "data" / "mailroom.sqlite3-shm"):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        connection.close()
    finally:
        os.umask(old)
    path.chmod(0o644)  # left open by an older version: tightened at the next start
    sqlite_settings(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_transactions_take_the_write_lock_at_begin(fresh_sqlite):
    """IMMEDIATE: a transaction that has only read still holds the write lock, so two
    workers never deadlock upgrading a read lock to a write lock."""
    from django.db import transaction

    connection, path = fresh_sqlite
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with transaction.atomic(using="fresh"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM t")
            assert connection.in_atomic_block
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_concurrent_first_start_agrees_on_one_key(tmp_path):
    """Several processes starting at once on an empty data dir end up with the same keys."""
    script = (
        "import os, sys, time\n"
        "go = sys.argv[1]\n"
        "while not os.path.exists(go): time.sleep(0.001)\n"
        "from mailroom import config\n"
        "cfg = config.load({'MAILROOM_DATA_DIR': sys.argv[2]})\n"
        "print(cfg.secret_key, ','.join(cfg.fernet_keys))\n"
    )
    for round_number in range(3):
        data_dir = tmp_path / f"data{round_number}"
        go = tmp_path / f"go{round_number}"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(go), str(data_dir)],
                                  stdout=subprocess.PIPE, text=True, cwd=tmp_path)
                 for _ in range(4)]
        time.sleep(0.5)  # all four are importing and waiting for the go file
        go.touch()
        outputs = [p.communicate(timeout=30)[0].strip() for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert len(set(outputs)) == 1, outputs
        secret_key, fernet = outputs[0].split(" ")
        assert (data_dir / "secret_key").read_text().strip() == secret_key
        assert (data_dir / "fernet.key").read_text().strip() == fernet
