"""core.turns: SQLite writers take turns on a file lock, which wakes the next one at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from mailroom.core import turns


@pytest.fixture
def turn_file(tmp_path, monkeypatch):
    path = str(tmp_path / "db.sqlite3-turns")
    monkeypatch.setattr(turns, "_turn_file", lambda using: path)
    return path


def _holder(path: str, seconds: float) -> subprocess.Popen:
    """Another process holding the turn for `seconds`, once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)\n"
         f"fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep({seconds})"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_turn_waits_for_another_process_and_starts_when_it_lets_go(turn_file):
    holder = _holder(turn_file, seconds=0.6)
    started = time.monotonic()
    with turns.writer_turn():
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert 0.3 < waited < 3  # waited for the holder, and not for a polling interval more


def test_nested_turns_are_one_turn_and_threads_of_a_process_queue(turn_file):
    order = []

    def other():
        with turns.writer_turn():
            order.append("other")

    with turns.writer_turn():
        with turns.writer_turn():  # nested: no second flock, no deadlock
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.2)
            order.append("first")
    thread.join(timeout=5)
    assert order == ["first", "other"]


@pytest.mark.django_db
def test_no_turn_inside_a_transaction_which_may_hold_sqlites_lock_already(turn_file):
    from django.db import transaction

    holder = _holder(turn_file, seconds=3)
    try:
        started = time.monotonic()
        with transaction.atomic(), turns.writer_turn():
            assert time.monotonic() - started < 1  # did not wait for the holder
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.django_db
def test_no_turns_where_rows_are_locked_one_by_one_or_the_database_is_in_memory():
    assert turns._turn_file("default") is None  # the tests' databases: in memory, or PostgreSQL
