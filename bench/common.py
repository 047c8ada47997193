"""Shared pieces of the benchmarks: ports, sinks, peak memory, a table printer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def postfix_tool(name: str) -> str | None:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def start_smtp_sink(port: int) -> subprocess.Popen:
    """Postfix's smtp-sink: accepts and discards mail as fast as the kernel allows."""
    sink = postfix_tool("smtp-sink")
    if sink is None:
        raise RuntimeError("smtp-sink not found: apt-get install postfix (used only as a tool)")
    proc = subprocess.Popen([sink, "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc


def start_slow_sink(port: int, delay_ms: int) -> subprocess.Popen:
    """An aiosmtpd sink that waits `delay_ms` before answering each message's DATA."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.slow_sink", str(port), str(delay_ms)],
                            cwd=ROOT)
    wait_for_port(port)
    return proc


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (its peak resident set), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def self_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[tuple], headers: tuple) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
