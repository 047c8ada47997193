"""`mailroom run` starts the demo mail catcher as one of its parts when MAILROOM_MAIL_CATCHER is
set, and mail sent to it over SMTP lands in the database that the UI reads. With
`--demo-if-empty` (what scripts/run passes) it seeds the demo first, whose server points there."""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess

import pytest

from mailroom.core.management.commands.run import catcher_wanted, child_commands
from tests import premigrated
from tests.core.test_processes import (
    alive,
    children_of,
    free_port,
    mailroom,
    mailroom_env,
    stop,
    wait_for,
)


def test_the_catcher_is_a_part_when_enabled(settings):
    settings.MAILROOM_MAIL_CATCHER = "127.0.0.1:2526"
    assert catcher_wanted()
    assert not catcher_wanted(no_catcher=True)
    parts = child_commands("127.0.0.1", 8000, 4, 1, catcher=True)
    assert [p.name for p in parts] == ["web", "worker-1", "catcher"]
    assert parts[-1].argv[-3:] == ["-m", "mailroom", "catcher"]
    settings.MAILROOM_MAIL_CATCHER = ""
    assert not catcher_wanted()
    assert "catcher" not in [p.name for p in child_commands("127.0.0.1", 8000, 4, 1)]


@pytest.mark.slow
def test_run_starts_the_catcher_and_it_stores_what_it_receives(tmp_path):
    port, smtp_port = free_port(), free_port()
    database = tmp_path / "run.sqlite3"
    env = mailroom_env(tmp_path, premigrated.sqlite_url(database),
                       MAILROOM_BASE_URL=f"http://127.0.0.1:{port}",
                       MAILROOM_MAIL_CATCHER=f"127.0.0.1:{smtp_port}")
    out_path, err_path = tmp_path / "run.out", tmp_path / "run.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(mailroom("run", "--port", str(port), "--no-gateway",
                                         "--demo-if-empty"), env=env,
                                cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)
    try:  # generous waits: three Django processes start at once on a loaded 2-core machine
        wait_for(lambda: "catcher: SMTP on" in err_path.read_text(), 180, "the catcher",
                 procs=[("mailroom run", proc)])
        wait_for(lambda: "Mailroom is running" in out_path.read_text(), 180, "the UI",
                 procs=[("mailroom run", proc)])
        assert f"http://127.0.0.1:{port}/demo/caught-mail/" in out_path.read_text()
        assert "admin-demo-1" in out_path.read_text()  # seeded: the sign-in table
        children = children_of(proc.pid)
        assert len(children) == 3, children  # web + worker + catcher
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            refused = smtp.sendmail("someone@localhost", ["ada@client.example"],
                                    b"Subject: Caught by the part\r\n\r\nHello\r\n")
        assert refused == {}

        def caught() -> list[tuple[str, str]]:
            with sqlite3.connect(database) as db:
                return db.execute("select subject, envelope_to from demo_caughtmail").fetchall()

        # the demo's weekly digest, sent to admin at seeding, goes out through the worker
        wait_for(lambda: any(s.startswith("Weekly pulse") for s, _ in caught()), 120,
                 "the demo digest in Caught mail", procs=[("mailroom run", proc)])
        rows = caught()
        with sqlite3.connect(database) as db:
            servers = db.execute("select name, host, port, active from outgoing_mailserver"
                                 ).fetchall()
        assert ("Caught by the part", '["ada@client.example"]') in rows
        assert [to for s, to in rows if s.startswith("Weekly pulse")] == [
            '["admin@mailroom-demo.example"]']
        assert servers == [("Demo: nothing leaves this machine", "127.0.0.1", smtp_port, 1)]
        code = stop(proc, signal.SIGINT, timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 0, err_path.read_text()
    assert "catcher: stopped" in err_path.read_text()
    assert [pid for pid in children if alive(pid)] == [], "orphaned children"
