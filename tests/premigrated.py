"""Migrated databases for the tests that start their own processes.

`mailroom migrate` on an empty database costs 13 s of CPU here (Django renders the model
state of every migration), and a dozen process tests each paid it, on two 2-core xdist
workers. The suite now migrates once per test run and per database kind and copies:

- SQLite: `sqlite_url(path)` puts a copy of one migrated file at `path`;
- PostgreSQL: `postgres_database(admin)` creates a database from one migrated template
  (CREATE DATABASE … TEMPLATE, a file copy inside the server).

The template is made by `mailroom migrate` in a process of its own, with the environment the
process tests give their nodes (tests.core.test_processes.mailroom_env); on PostgreSQL it
then forgets the key fingerprints that migrate recorded, so each copy learns its
installation's keys as a fresh database does. It is named after a hash of every migration
file, so a changed migration makes a new one; xdist workers wait on one file lock while the
first of them builds it. The tests' own setup code may still call `migrate`: with nothing
to apply it only runs the post-migrate hooks, as on a real upgrade.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "mailroom"


def _migrations_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(SRC.glob("**/migrations/*.py")):
        digest.update(str(path.relative_to(SRC)).encode())
        digest.update(path.read_bytes())
    import django

    digest.update(django.__version__.encode())
    return digest.hexdigest()[:16]


@contextmanager
def _lock(name: str):
    path = Path(tempfile.gettempdir()) / f"mailroom-tests-{name}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _migrate(database_url: str, work: Path) -> None:
    from tests.core.test_processes import mailroom, mailroom_env

    env = mailroom_env(work, database_url)
    done = subprocess.run(mailroom("migrate", "--no-input", "-v", "0"), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def _sqlite_template() -> Path:
    template = Path(tempfile.gettempdir()) / f"mailroom-tests-{_migrations_hash()}.sqlite3"
    if template.exists():
        return template
    with _lock("sqlite-template"):
        if not template.exists():
            work = Path(tempfile.mkdtemp(prefix="mailroom-migrate-"))
            try:
                building = work / "db.sqlite3"
                _migrate(f"sqlite:///{building}", work)
                os.replace(building, template)  # whole, or not there
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return template


def sqlite_url(path: Path) -> str:
    """A migrated SQLite database at `path` (a copy of the run's template); its URL."""
    shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


def _postgres_template(admin) -> str:
    name = f"mr_tmpl_{_migrations_hash()}"
    with _lock("postgres-template"):
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if found is None:
            # templates of older migrations are left over by earlier runs on this server
            for (old,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE "
                                        "'mr\\_tmpl\\_%%' AND datname != %s", [name]).fetchall():
                admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            building = f"mr_tmpl_build_{secrets.token_hex(4)}"
            admin.execute(f'CREATE DATABASE "{building}"')
            work = Path(tempfile.mkdtemp(prefix="mailroom-migrate-"))
            try:
                url = _database_url(admin, building)
                _migrate(url, work)
                _forget_keys(url)
                admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            except BaseException:
                admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                raise
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return name


def _forget_keys(url: str) -> None:
    """The template knows no installation keys: like a fresh database, a copy learns them
    from the first node that migrates it or starts on it (core.keyring), so tests that give
    their nodes keys of their own (tests/core/nodes.py) can use it too."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM core_keyfingerprint")


def _database_url(admin, name: str) -> str:
    from tests.conftest import postgres_admin_url

    return urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))


def postgres_database(admin, prefix: str = "mr_test") -> tuple[str, str]:
    """A new migrated database, cloned from the run's template: (its name, its URL). `admin`:
    an autocommit connection to the server's maintenance database; the caller drops it."""
    template = _postgres_template(admin)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name, _database_url(admin, name)
