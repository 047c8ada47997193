"""bench/outbound — how fast Mailroom sends, against the physical limit and a peer.

    ./scripts/bench outbound            (or: python -m bench.outbound [--count N] [--quick])

Measured in one run on this machine: Postfix's smtp-source → smtp-sink (the wire limit), a
bare smtplib loop (the Python transport limit), Mailroom end to end on SQLite and PostgreSQL
with 1 and 2 workers, django-post-office on the same mails and sink, a sink that waits 20 ms
per message with 1/4/16 connections, and enqueueing 100,000 templated mails.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import smtplib
import subprocess
import sys
import tempfile
import time

from bench.common import (
    ROOT,
    free_port,
    personalized,
    postfix_tool,
    print_table,
    start_slow_sink,
    start_smtp_sink,
)

PG_ADMIN_URL = os.environ.get("MAILROOM_TEST_POSTGRES_URL",
                              "postgres://postgres@127.0.0.1:5432/postgres")


def build_messages(count: int) -> list[tuple[str, list[str], bytes]]:
    """Pre-built personalized messages (Mailroom's MIME builder: lines folded for SMTP)."""
    from mailroom.lib.ids import make_message_id
    from mailroom.lib.mime import build_message

    messages = []
    for n in range(count):
        subject, html, text, to = personalized(n)
        raw = build_message(from_addr=("Acme Billing", "billing@acme.example"), to=[to],
                            subject=subject, html=html, text=text,
                            message_id=make_message_id("acme.example"))
        messages.append(("billing@acme.example", [to[1]], raw))
    return messages


def physical_limit(port: int, size: int, count: int, sessions: int) -> float:
    source = postfix_tool("smtp-source")
    started = time.perf_counter()
    subprocess.run([source, "-l", str(size), "-m", str(count), "-s", str(sessions),
                    "-f", "billing@acme.example", "-t", "customer@client.example",
                    f"127.0.0.1:{port}"], check=True)
    return count / (time.perf_counter() - started)


def smtplib_loop(port: int, messages) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, rcpts, raw in messages:
            smtp.sendmail(sender, rcpts, raw)
    return len(messages) / (time.perf_counter() - started)


def threaded_smtplib(port: int, messages, connections: int) -> float:
    """A bare client: `connections` threads, each with one reused smtplib connection."""
    from concurrent.futures import ThreadPoolExecutor

    def run(chunk):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for sender, rcpts, raw in chunk:
                smtp.sendmail(sender, rcpts, raw)

    chunks = [messages[i::connections] for i in range(connections)]
    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(run, chunks))
    return len(messages) / (time.perf_counter() - started)


class Database:
    """A fresh database for one scenario: a SQLite file or a new PostgreSQL database."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"mailroom-bench-{kind}-")
        if kind == "sqlite":
            self.url = f"sqlite:///{self.dir}/bench.sqlite3"
        else:
            import psycopg

            self.name = f"mr_bench_{secrets.token_hex(4)}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(MAILROOM_DATABASE_URL=self.url, MAILROOM_DATA_DIR=self.dir,
                   MAILROOM_LOG_LEVEL="WARNING", PYTHONPATH=f"{ROOT}/src:{ROOT}")
        return env


def run_json(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def mailroom(kind: str, port: int, count: int, workers: int, connections: int = 4,
             enqueue_only: bool = False) -> dict:
    db = Database(kind)
    try:
        args = ["bench.mailroom_scenario", "--sink-port", str(port), "--count", str(count),
                "--workers", str(workers), "--connections", str(connections)]
        if enqueue_only:
            args.append("--enqueue-only")
        return run_json(args, db.env())
    finally:
        db.drop()


def post_office(port: int, count: int, batch: int) -> dict:
    db = Database("sqlite")
    return run_json(["bench.post_office_peer", str(port), str(count), db.url, str(batch)],
                    db.env())


def slow_sink_runs(rows: list[tuple], sample: list, count: int, widths: list[int]) -> None:
    """A sink that waits 20 ms before each DATA reply: what concurrent connections buy.

    The ceiling is a bare threaded smtplib client with as many connections (smtplib talks in
    lockstep: a round trip per command). Mailroom runs twice: against the sink in lockstep,
    and against the same sink offering PIPELINING as Postfix, Exim, Gmail and Microsoft 365 do.
    """
    for connections in widths:
        ideal = connections / 0.020
        for pipelining in (False, True):
            port = free_port()
            slow = start_slow_sink(port, 20, pipelining)
            try:
                if not pipelining:
                    bare = threaded_smtplib(port, sample[:connections * 60], connections)
                    rows.append((f"20 ms sink, {connections} conn., bare smtplib threads",
                                 f"{bare:,.0f}/s", "", f"{bare / ideal:.0%} of {ideal:,.0f}/s"))
                result = mailroom("sqlite", port, count, 1, connections=connections)
            finally:
                slow.terminate()
            how = "PIPELINING" if pipelining else "lockstep"
            rows.append((f"20 ms sink, {connections} conn., Mailroom, {how}",
                         f"{result['send_rate']:,.0f}/s", f"{result['worker_peak_rss_mb']:.0f} MB",
                         f"{result['send_rate'] / ideal:.0%} of {ideal:,.0f}/s, "
                         f"{result['send_rate'] / bare:.0%} of bare"))
            print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--enqueue-count", type=int, default=100_000)
    parser.add_argument("--slow-count", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="a tenth of every count")
    parser.add_argument("--only-slow", action="store_true",
                        help="only the runs against the 20 ms sink")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 16],
                        help="connection counts for the 20 ms sink runs")
    args = parser.parse_args()
    if args.quick:
        args.count //= 10
        args.enqueue_count //= 10
        args.slow_count //= 4
    rows: list[tuple] = []
    if args.only_slow:
        slow_sink_runs(rows, build_messages(2000), args.slow_count, args.connections)
        print_table(rows, ("run", "rate", "peak RSS", "note"))
        return
    sink_port = free_port()
    sink = start_smtp_sink(sink_port)
    try:
        sample = build_messages(min(args.count, 2000))
        size = sum(len(m[2]) for m in sample) // len(sample)
        print(f"message size ≈ {size} bytes; {args.count} mails per run", flush=True)
        wire1 = physical_limit(sink_port, size, args.count, 1)
        wire4 = physical_limit(sink_port, size, args.count, 4)
        rows.append(("smtp-source → smtp-sink, 1 session", f"{wire1:,.0f}/s", "",
                     "wire limit (a connection per mail)"))
        rows.append(("smtp-source → smtp-sink, 4 sessions", f"{wire4:,.0f}/s", "", ""))
        loop = smtplib_loop(sink_port, sample)
        rows.append(("bare smtplib loop, 1 connection", f"{loop:,.0f}/s", "", "Python limit"))
        print_table(rows, ("run", "rate", "peak RSS", "note"))
        po = post_office(sink_port, args.count, 500)
        rows.append(("django-post-office, batch 500", f"{po['rate']:,.0f}/s",
                     f"{po['peak_rss_mb']:.0f} MB", "peer"))
        results = {}
        for kind, workers in (("sqlite", 1), ("sqlite", 2), ("postgresql", 1),
                              ("postgresql", 2)):
            result = mailroom(kind, sink_port, args.count, workers)
            results[(kind, workers)] = result
            note = f"×{result['send_rate'] / po['rate']:.1f} post-office"
            if result["sent"] < args.count:
                note += f"; only {result['sent']} sent {result.get('errors')}"
            rows.append((f"Mailroom end to end, {kind}, {workers} worker(s)",
                         f"{result['send_rate']:,.0f}/s",
                         f"{result['worker_peak_rss_mb']:.0f} MB", note))
            print(rows[-1], flush=True)
    finally:
        sink.terminate()
    slow_sink_runs(rows, sample, args.slow_count, args.connections)
    result = mailroom("sqlite", sink_port, args.enqueue_count, 0, enqueue_only=True)
    rows.append((f"enqueue {args.enqueue_count:,} templated mails (SQLite)",
                 f"{result['enqueue_rate']:,.0f}/s", f"{result['enqueue_peak_rss_mb']:.0f} MB", ""))
    print()
    print_table(rows, ("run", "rate", "peak RSS", "note"))


if __name__ == "__main__":
    main()
