"""Loaded by `mailroom worker` through MAILROOM_WORKER_MODULES in test_pingen_crash.py.

The "test-pingen-crash" provider is the real Pingen provider (talking to the fake Pingen the
test runs on loopback); the first time Pingen accepts a letter, it kills its own process with
SIGKILL right after the answer — between Pingen's acceptance and Mailroom's write.
"""

from __future__ import annotations

import os
import signal

from mailroom.letters.providers import register_provider
from mailroom.letters.providers.pingen import PingenProvider

CRASH_FILE = os.environ.get("MAILROOM_TEST_CRASH_FILE", "")


@register_provider
class CrashingPingen(PingenProvider):
    kind = "test-pingen-crash"

    def submit(self, letter, pdf):
        result = super().submit(letter, pdf)
        if CRASH_FILE and not os.path.exists(CRASH_FILE):
            open(CRASH_FILE, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return result
