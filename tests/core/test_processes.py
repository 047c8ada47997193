"""Real processes: cron exactly once across workers, and `mailroom run` start and stop.

Each test makes its own database (a SQLite file, or a fresh PostgreSQL database), so these
tests are the same whichever database the rest of the suite runs on.

The worker processes import this module (MAILROOM_WORKER_MODULES), where the env var
MAILROOM_TEST_COUNT_FILE registers the "count_run" task: it appends one line per execution
with O_APPEND, so double runs are counted without trusting the database's unique constraint.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import premigrated
from tests.conftest import NEEDS_POSTGRES, postgres_admin_url

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TEST_SECRET_KEY = "test-installation-secret-key-shared-by-every-node-of-a-test-run"
TEST_FERNET_KEY = "ZmRvDWmx2Hh8uBtbMtpsC_A7QRDBIWVZ1FVxnkUNQTE="
COUNT_FILE = os.environ.get("MAILROOM_TEST_COUNT_FILE")
RUNS_WANTED = 30

if COUNT_FILE:
    from mailroom.core.cron import current_run, register_task

    @register_task("count_run")
    def count_run() -> str:
        run = current_run()
        line = f"{run.slot.isoformat()} {run.worker} {time.time():.3f}\n"
        fd = os.open(COUNT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return "counted"


# --- helpers -------------------------------------------------------------------------------

def mailroom_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MAILROOM_DATA_DIR": str(tmp_path / "data"),
           "MAILROOM_DATABASE_URL": database_url,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for name in ("MAILROOM_SUPERVISOR_PID", "MAILROOM_WORKER_MODULES", "DATABASE_URL"):
        env.pop(name, None)
    # `mailroom run` starts the SMTP gateway: on any free port, so parallel runs never collide
    env.update(MAILROOM_GATEWAY_SMTP="127.0.0.1:0", MAILROOM_GATEWAY_LMTP="")
    # the processes are nodes of one installation: on PostgreSQL they must share their keys
    # (core.keyring), so they get the same ones
    env.setdefault("MAILROOM_SECRET_KEY", TEST_SECRET_KEY)
    env.setdefault("MAILROOM_FERNET_KEYS", TEST_FERNET_KEY)
    env.update(extra)
    return env


def mailroom(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailroom", *args]


def wait_for(predicate, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for name, proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode} while waiting for "
                                     f"{what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 10) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"pid {proc.pid} did not stop within {timeout}s of {sig!r}") from None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


# --- cron exactly once ---------------------------------------------------------------------
#
# Both databases run at once (two workers each) to keep the file short: the module fixture
# starts every scenario, and each test collects and checks its own.

class CronScenario:
    """Two `mailroom worker --steps cron` processes on one fresh database, running a job
    scheduled "@every 1s" whose task logs each execution to a file."""

    def __init__(self, kind: str, tmp: Path, database_url: str) -> None:
        self.kind, self.tmp, self.database_url = kind, tmp, database_url
        self.count_file = tmp / "executions.log"
        self.env = mailroom_env(tmp, database_url,
                                MAILROOM_WORKER_MODULES="tests.core.test_processes",
                                MAILROOM_TEST_COUNT_FILE=str(self.count_file))
        self.setup: subprocess.Popen | None = None
        self.workers: list[tuple[str, subprocess.Popen]] = []

    def begin_setup(self) -> None:
        code = (
            "from django.core.management import call_command\n"
            "from django.utils import timezone\n"
            "from mailroom.core.models import CronJob\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
            "CronJob.objects.create(name='count', task='count_run', schedule='@every 1s',"
            " next_run_at=timezone.now())\n"
        )
        with (self.tmp / "setup.log").open("w") as out:
            self.setup = subprocess.Popen(mailroom("shell", "--no-imports", "-c", code),
                                          env=self.env, cwd=REPO, stdout=out,
                                          stderr=subprocess.STDOUT)

    def start_workers(self) -> None:
        code = self.setup.wait(timeout=120)
        assert code == 0, (self.tmp / "setup.log").read_text()
        for name in ("w1", "w2"):
            with (self.tmp / f"{name}.log").open("w") as out:
                self.workers.append((name, subprocess.Popen(
                    mailroom("worker", "--steps", "cron", "--name", name), env=self.env,
                    cwd=REPO, stdout=out, stderr=subprocess.STDOUT)))

    def executions(self) -> list[list[str]]:
        if not self.count_file.exists():
            return []
        return [line.split() for line in self.count_file.read_text().splitlines()]

    def finish(self) -> dict[str, int]:
        """Wait for the runs, SIGTERM the workers; returns their exit codes."""
        wait_for(lambda: len(self.executions()) >= RUNS_WANTED, 75,
                 f"{RUNS_WANTED} cron runs on {self.kind}", procs=self.workers)
        return {name: stop(proc) for name, proc in self.workers}

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{(self.tmp / f'{name}.log').read_text()}"
                         for name, _ in self.workers)

    def run_records(self) -> list[tuple[datetime, str, bool, str]]:
        """The CronRun rows, read with the database's own driver (not through Django)."""
        query = ("SELECT r.scheduled_for, r.worker, r.ok, r.result FROM core_cronrun r "
                 "JOIN core_cronjob j ON j.id = r.job_id WHERE j.name = 'count'")
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as conn:
                rows = conn.execute(query).fetchall()
            # Django stores UTC as text, e.g. "2026-11-24 00:26:15.123456"
            return [(datetime.fromisoformat(at).replace(tzinfo=UTC), worker, bool(ok), result)
                    for at, worker, ok, result in rows]
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(query).fetchall()
        return [(at.astimezone(UTC), worker, ok, result) for at, worker, ok, result in rows]

    def kill(self) -> None:
        for _, proc in [("setup", self.setup), *self.workers]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cron_scenarios(tmp_path_factory):
    import psycopg

    scenarios: dict[str, CronScenario | str] = {}
    sqlite_dir = tmp_path_factory.mktemp("cron-sqlite")
    scenarios["sqlite"] = CronScenario("sqlite", sqlite_dir,
                                       premigrated.sqlite_url(sqlite_dir / "mailroom.sqlite3"))
    admin_url, admin, pg_name = postgres_admin_url(), None, None
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        scenarios["postgresql"] = f"PostgreSQL unreachable at {admin_url}: {exc}"
    if admin is not None:
        pg_name, pg_url = premigrated.postgres_database(admin, "mr_cron")
        scenarios["postgresql"] = CronScenario("postgresql",
                                               tmp_path_factory.mktemp("cron-postgresql"),
                                               pg_url)
    running = [s for s in scenarios.values() if isinstance(s, CronScenario)]
    try:
        for scenario in running:
            scenario.begin_setup()
        for scenario in running:
            scenario.start_workers()
        yield scenarios
    finally:
        for scenario in running:
            scenario.kill()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            admin.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=NEEDS_POSTGRES)])
def test_two_workers_run_each_cron_slot_exactly_once(cron_scenarios, kind):
    scenario = cron_scenarios[kind]
    assert not isinstance(scenario, str), scenario  # PostgreSQL was not reachable

    codes = scenario.finish()
    assert codes == {"w1": 0, "w2": 0}, scenario.logs()

    lines = scenario.executions()
    per_slot = Counter(slot for slot, _, _ in lines)
    twice = {slot: n for slot, n in per_slot.items() if n > 1}
    assert not twice, f"slots executed more than once: {twice}"
    assert len(per_slot) >= RUNS_WANTED

    # slots sit on the one-second grid and each runs when due, not replayed later in a burst
    # (the first slot was due when the job was created, before the workers had started)
    slots = sorted(datetime.fromisoformat(slot) for slot in per_slot)
    offsets = [(slot - slots[0]).total_seconds() for slot in slots]
    assert all(offset == int(offset) for offset in offsets), offsets
    lateness = [float(at) - datetime.fromisoformat(slot).timestamp()
                for slot, _, at in lines if datetime.fromisoformat(slot) != slots[0]]
    assert all(0 <= late < 5 for late in lateness), lateness

    # each execution has its run record and each record its one execution; none unfinished
    records = scenario.run_records()
    assert sorted(at for at, _, _, _ in records) == slots
    assert {(at, worker) for at, worker, _, _ in records} == {
        (datetime.fromisoformat(slot), worker) for slot, worker, _ in lines}
    assert all(ok and result == "counted" for _, _, ok, result in records), records

    by_worker = Counter(worker for _, worker, _ in lines)
    assert set(by_worker) == {"w1", "w2"}, f"one worker took every run: {by_worker}"


# --- mailroom run --------------------------------------------------------------------------

def start_run(tmp_path: Path, port: int, *args: str):
    env = mailroom_env(tmp_path, premigrated.sqlite_url(tmp_path / "run.sqlite3"),
                       MAILROOM_BASE_URL=f"http://127.0.0.1:{port}",
                       MAILROOM_WORKER_NICE="")  # the default niceness (conftest sets 0)
    out_path, err_path = tmp_path / "run.out", tmp_path / "run.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(mailroom("run", "--port", str(port), *args), env=env,
                                cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)
    try:
        wait_for(lambda: "Mailroom is running" in out_path.read_text(), 60,
                 "`mailroom run` to announce the UI", procs=[("mailroom run", proc)])
    except AssertionError:
        proc.kill()
        proc.wait()
        raise AssertionError(err_path.read_text()) from None
    return proc, out_path, err_path


def test_run_serves_the_ui_and_static_files_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    proc, out_path, err_path = start_run(tmp_path, port, "--workers", "1")
    try:
        assert f"http://127.0.0.1:{port}/" in out_path.read_text()
        children = children_of(proc.pid)
        assert len(children) == 3, children  # web + one worker + the gateway
        # the worker yields the CPU to the web and the gateway (MAILROOM_WORKER_NICE)
        wait_for(lambda: sorted(os.getpriority(os.PRIO_PROCESS, pid) for pid in children)
                 == [0, 0, 10], 30, "the worker to lower its priority")
        worker = next(pid for pid in children if os.getpriority(os.PRIO_PROCESS, pid))
        assert b"worker" in Path(f"/proc/{worker}/cmdline").read_bytes()
        wait_for(lambda: "gateway: SMTP on" in err_path.read_text(), 30, "the gateway")

        home = get(port, "/")
        assert home.status in (200, 302)
        if home.status == 302:
            assert "login" in home.getheader("Location")
            assert get(port, home.getheader("Location")).status == 200
        css = get(port, "/static/unfold/css/styles.css")
        assert css.status == 200
        assert css.getheader("Content-Type").startswith("text/css")
        assert len(css.body) > 1000

        code = stop(proc, signal.SIGINT, timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err_path.read_text()
    assert code == 0, err
    assert [pid for pid in children if alive(pid)] == [], "orphaned children"
    assert "SIGINT received: stopping all parts" in err
    assert "web: stopped" in err and "stopped" in err.split("worker-1 |")[-1]
    assert "gateway: stopped" in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_run_stops_everything_and_fails_when_a_part_dies(tmp_path):
    port = free_port()
    proc, _, err_path = start_run(tmp_path, port, "--workers", "1")
    try:
        children = children_of(proc.pid)
        web_and_worker = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                          for pid in children}
        worker_pid = next(pid for pid, argv in web_and_worker.items() if b"worker" in argv)
        os.kill(worker_pid, signal.SIGKILL)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err_path.read_text()
    assert code != 0
    assert "worker-1 exited unexpectedly (signal SIGKILL); stopping the others" in err
    assert "CommandError: worker-1 exited unexpectedly (signal SIGKILL); all parts were " \
        "stopped." in err
    assert [pid for pid in children if alive(pid)] == [], "orphaned children"
