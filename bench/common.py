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


def start_slow_sink(port: int, delay_ms: int, pipelining: bool = False) -> subprocess.Popen:
    """An aiosmtpd sink that waits `delay_ms` before answering each message's DATA."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.slow_sink", str(port), str(delay_ms),
                             *(["--pipelining"] if pipelining else [])], cwd=ROOT)
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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used so far, in seconds."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


_NAMES = ["Ada Lovelace", "Grace Hopper", "Zoë Martín", "Jürgen Groß", "Åsa Öberg",
          "Li Wei 李伟", "Nadia El-Amin", "Olu Adeyemi"]
_ROWS = "".join(
    f"<tr><td style='padding:4px 8px'>Service line {i}</td>"
    f"<td style='padding:4px 8px;text-align:right'>{i * 12.5:.2f} €</td></tr>" for i in range(1, 9)
)
HTML_TEMPLATE = (
    "<html><body style='font-family:Arial,sans-serif;color:#222'>"
    "<p>Dear {{ name }},</p><p>Please find your invoice <b>{{ ref }}</b> "
    "for {{ amount }} € due on {{ due }}.</p>"
    "<table style='border-collapse:collapse;width:100%'>" + _ROWS + "</table>"
    "<p>You can pay by bank transfer to IBAN FR76 3000 6000 0112 3456 7890 189.</p>"
    "<p>Kind regards,<br>Acme Billing</p></body></html>"
)
TEXT_TEMPLATE = (
    "Dear {{ name }},\n\nPlease find your invoice {{ ref }} for {{ amount }} EUR due on "
    "{{ due }}.\n\nKind regards,\nAcme Billing\n"
)


def personalized(n: int, env=None) -> tuple[str, str, str, tuple[str, str]]:
    """One personalized invoice mail: (subject, html, text, (name, address)).

    Rendered with Jinja2's sandbox, as Mailroom's templates will be.
    """
    global _COMPILED
    if env is None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        if "_COMPILED" not in globals():
            env = ImmutableSandboxedEnvironment(autoescape=True)
            _COMPILED = (env.from_string(HTML_TEMPLATE), env.from_string(TEXT_TEMPLATE))
    html_t, text_t = _COMPILED
    name = _NAMES[n % len(_NAMES)]
    ctx = {"name": name, "ref": f"INV/2026/{n:05d}", "amount": f"{100 + n % 900}.00",
           "due": "2026-12-24"}
    subject = f"Invoice INV/2026/{n:05d} for {name}"
    return subject, html_t.render(ctx), text_t.render(ctx), (name, f"customer{n}@client.example")
