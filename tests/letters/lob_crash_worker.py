"""Loaded by `mailroom worker` through MAILROOM_WORKER_MODULES in test_lob_crash.py.

In that worker process only, the "lob" kind is the real Lob provider that kills its own process
with SIGKILL right after Lob accepted the first letter — between the provider's acceptance and
Mailroom's write. The fake Lob (in the test process) counts the letters it really made.
"""

from __future__ import annotations

import os
import signal

from mailroom.letters.providers import register_provider
from mailroom.letters.providers.lob import LobProvider

CRASH_FILE = os.environ.get("MAILROOM_TEST_CRASH_FILE", "")


@register_provider
class CrashingLob(LobProvider):
    kind = "lob"  # replaces the real class in this worker process

    def submit(self, letter, pdf):
        result = super().submit(letter, pdf)
        if CRASH_FILE and not os.path.exists(CRASH_FILE):
            open(CRASH_FILE, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return result
