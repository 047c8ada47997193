"""`mailroom run`: the embedded default — migrate, then web + workers (+ gateway, + the demo
mail catcher) as children.

The supervisor starts each part as `python -m mailroom <command>` in one process group of
its own, prefixes their console output with the part's name, and stops them all on Ctrl-C or
SIGTERM: SIGTERM to the group, a grace period for the current request or step, then SIGKILL.
If one part dies on its own, the others are stopped and `run` exits non-zero: a half-running
Mailroom (say, a UI whose mail is never sent) is worse than a clear failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from mailroom.core.keyring import refuse_to_start_without_keys
from mailroom.core.management import SUPERVISOR_ENV

CATCHER_COMMAND = "catcher"  # the demo app's `mailroom catcher`, when installed
DEMO_COMMAND = "demo"  # the demo app's `mailroom demo`, when installed


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    forwarder: threading.Thread | None = field(default=None, repr=False)


def mailroom(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailroom", *args]


def child_commands(host: str, port: int, threads: int, workers: int,
                   gateway: bool = False, catcher: bool = False) -> list[Child]:
    """What `mailroom run` starts. New long-running parts join this list."""
    children = [Child("web", mailroom("web", "--host", host, "--port", str(port),
                                      "--threads", str(threads)))]
    for number in range(1, workers + 1):
        children.append(Child(f"worker-{number}", mailroom("worker")))
    if gateway:  # listens where MAILROOM_GATEWAY_SMTP / _LMTP say
        children.append(Child("gateway", mailroom("gateway")))
    if catcher:  # the demo mail catcher, by command name: core does not import the demo app
        children.append(Child("catcher", mailroom(CATCHER_COMMAND)))
    return children


def catcher_wanted(no_catcher: bool = False) -> bool:
    """The demo mail catcher runs when MAILROOM_MAIL_CATCHER names where (by default only for
    the embedded SQLite default) and the demo app that owns `mailroom catcher` is installed."""
    from django.conf import settings

    return (not no_catcher and bool(settings.MAILROOM_MAIL_CATCHER.strip())
            and CATCHER_COMMAND in get_commands())


class Command(BaseCommand):
    help = ("Run everything in one: migrate, then the web UI + API and workers as child "
            "processes. Ctrl-C or SIGTERM stops them all.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address the web UI listens on.")
        parser.add_argument("--port", type=int, default=8000, help="Port of the web UI.")
        parser.add_argument("--threads", type=int, default=8, help="Web request threads.")
        parser.add_argument("--workers", type=int, default=1, help="Worker processes.")
        parser.add_argument("--no-worker", action="store_true", help="Start no worker.")
        parser.add_argument("--no-gateway", action="store_true",
                            help="Start no SMTP/LMTP gateway (also off when "
                                 "MAILROOM_GATEWAY_SMTP and MAILROOM_GATEWAY_LMTP are empty).")
        parser.add_argument("--no-catcher", action="store_true",
                            help="Start no demo mail catcher (also off when "
                                 "MAILROOM_MAIL_CATCHER is empty, the default with a "
                                 "database URL).")
        parser.add_argument("--demo-if-empty", action="store_true",
                            help="After migrating, seed the demo companies when no company "
                                 "exists yet (scripts/run: one start-up instead of three).")
        parser.add_argument("--stop-timeout", type=float, default=15.0,
                            help="Seconds the parts get to stop before SIGKILL (default 15).")

    def handle(self, *args, host: str, port: int, threads: int, workers: int, no_worker: bool,
               no_gateway: bool, no_catcher: bool, demo_if_empty: bool, stop_timeout: float,
               **options) -> None:
        from django.conf import settings

        if workers < 0:
            raise CommandError("--workers must be 0 or more.")
        call_command("migrate", interactive=False, verbosity=max(0, options["verbosity"] - 1))
        refuse_to_start_without_keys()  # on PostgreSQL: the installation's keys, or exit
        if demo_if_empty and DEMO_COMMAND in get_commands():  # by name: core imports no demo
            call_command(DEMO_COMMAND, if_empty=True, stdout=self.stdout)
        connections.close_all()  # the children open their own
        gateway = not no_gateway and bool(settings.MAILROOM_GATEWAY_SMTP.strip()
                                            or settings.MAILROOM_GATEWAY_LMTP.strip())
        catcher = catcher_wanted(no_catcher)
        supervisor = Supervisor(child_commands(host, port, threads, 0 if no_worker else workers,
                                               gateway=gateway, catcher=catcher),
                                out=sys.stderr, stop_timeout=stop_timeout)
        failure = supervisor.run(ready=lambda: self._announce(host, port, catcher))
        if failure:
            raise CommandError(f"{failure}; all parts were stopped.", returncode=1)

    def _announce(self, host: str, port: int, catcher: bool = False) -> None:
        from django.conf import settings
        from django.urls import NoReverseMatch, reverse

        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        local = f"http://{shown}:{port}/"
        lines = [f"Mailroom is running: open {local}"]
        if settings.BASE_URL.rstrip("/") + "/" != local:
            lines.append(f"  links in emails point to {settings.BASE_URL}/ (MAILROOM_BASE_URL)")
        if catcher:
            try:
                page = reverse("demo:caught_list").lstrip("/")
            except NoReverseMatch:
                page = ""
            lines.append(f"  demo mail catcher on {settings.MAILROOM_MAIL_CATCHER}: mail sent "
                         f"through it is kept, never delivered; read it at {local}{page}")
        lines.append("  Ctrl-C stops it.")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()


class Supervisor:
    def __init__(self, children: list[Child], out, stop_timeout: float = 15.0,
                 poll: float = 0.2) -> None:
        self.children = children
        self.out = out
        self.stop_timeout = stop_timeout
        self.poll = poll
        self.stopping = threading.Event()
        self.hurry = threading.Event()  # a second Ctrl-C: kill now
        self.pgid: int | None = None
        self._out_lock = threading.RLock()  # RLock: the signal handler writes too

    def run(self, ready=None) -> str | None:
        """Start the children and watch them. Returns None after a requested stop, or a
        message saying which part died."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_all()
            announced = ready is None
            web = next((c for c in self.children if c.name == "web"), None)
            while not self.stopping.is_set():
                dead = next((c for c in self.children if c.process.poll() is not None), None)
                if dead is not None:
                    # a signal sent to all our processes at once (systemd stopping the whole
                    # cgroup) may end a child first: give our own handler a moment
                    if self.stopping.wait(0.5):
                        break
                    code = dead.process.returncode
                    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
                    message = f"{dead.name} exited unexpectedly ({how})"
                    self._say(f"{message}; stopping the others")
                    self._stop_all()
                    return message
                if not announced and web is not None and _port_open(web.argv):
                    ready()
                    announced = True
                self.stopping.wait(self.poll)
            self._stop_all()
            return None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        if self.stopping.is_set():
            self._say(f"{signal.Signals(signum).name} received again: killing all parts")
            self.hurry.set()
        else:
            self._say(f"{signal.Signals(signum).name} received: stopping all parts "
                      f"(again to kill them at once)")
        self.stopping.set()

    def _start_all(self) -> None:
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        for child in self.children:
            child.process = subprocess.Popen(
                child.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace",
                # one group for all parts, apart from the terminal's: Ctrl-C reaches only the
                # supervisor, which then stops the parts in order
                process_group=0 if self.pgid is None else self.pgid,
            )
            if self.pgid is None:
                self.pgid = child.process.pid
            child.forwarder = threading.Thread(target=self._forward, args=(child,),
                                               name=f"forward-{child.name}", daemon=True)
            child.forwarder.start()
            self._say(f"started {child.name} (pid {child.process.pid})")

    def _forward(self, child: Child) -> None:
        width = max(len(c.name) for c in self.children)
        for line in child.process.stdout:
            with self._out_lock:
                self.out.write(f"{child.name:<{width}} | {line}")
                self.out.flush()

    def _say(self, text: str) -> None:
        with self._out_lock:
            self.out.write(f"mailroom run: {text}\n")
            self.out.flush()

    def _alive(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is None]

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self._alive() and time.monotonic() < deadline and not self.hurry.is_set():
            time.sleep(0.05)
        stragglers = self._alive()
        if stragglers and not self.hurry.is_set():
            self._say(f"{', '.join(c.name for c in stragglers)} did not stop within "
                      f"{self.stop_timeout:g}s; killing")
        self._signal_all(signal.SIGKILL)  # also reaps anything a part left in the group
        for child in self.children:
            if child.process is not None:
                child.process.wait()
            if child.forwarder is not None:
                child.forwarder.join(timeout=2)

    def _signal_all(self, sig: signal.Signals) -> None:
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, sig)
                return
            except ProcessLookupError:
                return  # nobody left in the group
            except PermissionError:
                pass
        for child in self._alive():
            child.process.send_signal(sig)


def _port_open(argv: list[str]) -> bool:
    host = argv[argv.index("--host") + 1]
    port = int(argv[argv.index("--port") + 1])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
