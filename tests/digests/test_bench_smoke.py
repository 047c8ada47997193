"""bench/digests runs end to end (a tiny run): the figures the README promises are printed and
every variant queued one mail per user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.core.test_processes import REPO

pytestmark = pytest.mark.slow


def test_the_digest_benchmark_runs_and_prints_its_table(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.digests", "--users", "12"], cwd=REPO,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("sqlite")]
    assert len(lines) == 3, out.stdout
    assert all(line.split()[-7] == "12" for line in lines), out.stdout  # mails
    assert "chart cache off" in out.stdout and "peak RSS MB" in out.stdout
