"""The worker loop, in process and as a real `mailroom worker` process.

The subprocess tests import this module in the worker (MAILROOM_WORKER_MODULES), where the
env var MAILROOM_TEST_SLOW_STEP_DIR turns on a slow step; in pytest's own process the step is
never registered.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailroom.core import steps as steps_module
from mailroom.core.steps import Step, register_step
from mailroom.core.worker import Worker

REPO = Path(__file__).resolve().parents[2]
SLOW_STEP_DIR = os.environ.get("MAILROOM_TEST_SLOW_STEP_DIR")

if SLOW_STEP_DIR:

    @register_step("test_slow")
    def slow_step(worker_name: str) -> bool:
        """Marks its start and end in a file, with two seconds in between."""
        log_file = Path(SLOW_STEP_DIR) / "steps.log"
        with log_file.open("a") as out:
            out.write(f"start {os.getpid()}\n")
        time.sleep(2)
        with log_file.open("a") as out:
            out.write(f"end {os.getpid()}\n")
        return True


@pytest.fixture(autouse=True)
def _connections_may_be_checked(django_db_blocker):
    # the loop checks (and closes) stale connections between steps; the fake steps here do
    # not use the database, but a connection left open by an earlier test may be looked at
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def steps(monkeypatch):
    """Register fake steps for one test; returns the list of calls made."""
    calls: list[str] = []

    def add(name, func=None):
        def default(worker_name):
            calls.append(name)
            return False

        monkeypatch.setitem(steps_module.STEPS, name, Step(name, func or default))

    add.calls = calls
    return add


def test_steps_run_in_turn(steps):
    steps("a")
    steps("b")
    w = Worker(steps=["a", "b"], idle_sleep=0.01)
    w.run(max_seconds=0.2)
    calls = steps.calls
    assert len(calls) >= 4
    assert calls[: len(calls) // 2 * 2] == ["a", "b"] * (len(calls) // 2)


def test_the_default_is_every_registered_step(steps):
    steps("a")
    assert [s.name for s in Worker().steps] == list(steps_module.STEPS)
    assert "cron" in steps_module.STEPS


def test_an_unknown_step_is_refused():
    with pytest.raises(ValueError, match="Unknown steps: nope"):
        Worker(steps=["cron", "nope"])


def test_an_exception_in_a_step_does_not_kill_the_loop(steps, caplog):
    def broken(worker_name):
        steps.calls.append("broken")
        raise RuntimeError("disk on fire")

    steps("broken", broken)
    steps("fine")
    w = Worker(steps=["broken", "fine"], idle_sleep=0.01, error_pause=0)
    with caplog.at_level(logging.ERROR, logger="mailroom.worker"):
        w.run(max_seconds=0.2)
    assert steps.calls.count("fine") >= 2
    assert steps.calls.count("broken") == steps.calls.count("fine")
    assert "step broken failed" in caplog.text and "disk on fire" in caplog.text


def test_stop_finishes_the_current_step_and_runs_no_other(steps):
    w = Worker(steps=[], idle_sleep=0.01)

    def stopper(worker_name):
        steps.calls.append("stopper")
        w.stop()
        steps.calls.append("stopper done")
        return True

    steps("stopper", stopper)
    steps("after")
    w.steps = [steps_module.STEPS["stopper"], steps_module.STEPS["after"]]
    w.run()
    assert steps.calls == ["stopper", "stopper done"]


def test_busy_steps_loop_without_sleeping(steps):
    def busy(worker_name):
        steps.calls.append("busy")
        return True

    steps("busy", busy)
    w = Worker(steps=["busy"], idle_sleep=10)
    w.run(max_seconds=0.2)
    assert len(steps.calls) > 5


# --- as a process --------------------------------------------------------------------------

def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MAILROOM_DATA_DIR": str(tmp_path / "data"),
           "MAILROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "MAILROOM_WORKER_MODULES": "tests.core.test_worker",
           "MAILROOM_TEST_SLOW_STEP_DIR": str(tmp_path)}
    env.pop("MAILROOM_SUPERVISOR_PID", None)
    env.update(extra)
    return env


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_sigterm_lets_the_running_step_finish_then_exits_0(tmp_path):
    steps_log = tmp_path / "steps.log"
    output = (tmp_path / "worker.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailroom", "worker", "--steps", "test_slow", "--name", "slow"],
        env=worker_env(tmp_path), cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: steps_log.exists() and "start" in steps_log.read_text(), 30,
                 "the slow step to start")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        waited = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.close()
    log = (tmp_path / "worker.out").read_text()
    assert code == 0, log
    # the step ran to its end, and no step was started after the signal
    assert steps_log.read_text().split("\n")[:2] == [f"start {proc.pid}", f"end {proc.pid}"]
    assert steps_log.read_text().count("start") == 1
    assert waited > 1.0
    assert "SIGTERM received, finishing the current step" in log
    assert "worker slow: stopped" in log


def test_a_worker_stops_when_its_supervisor_is_killed(tmp_path):
    """`mailroom run` children must not outlive a supervisor killed with SIGKILL."""
    pid_file = tmp_path / "worker.pid"
    supervisor_code = (
        "import os, subprocess, sys, time\n"
        "env = dict(os.environ, MAILROOM_SUPERVISOR_PID=str(os.getpid()))\n"
        "p = subprocess.Popen([sys.executable, '-m', 'mailroom', 'worker', '--steps', 'cron'],"
        " env=env)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", supervisor_code], cwd=tmp_path,
                                  env=worker_env(tmp_path), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10, "the worker to start")
        child = int(pid_file.read_text())
        time.sleep(2)  # let the worker get going (Django setup, signal handlers)
        supervisor.kill()
        supervisor.wait()
        wait_for(lambda: not _alive(child), 10, "the orphaned worker to stop")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
