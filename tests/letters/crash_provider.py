"""Loaded by `mailroom worker` through MAILROOM_WORKER_MODULES in test_crash.py.

The "test-crash" provider is the local print room, counting in a file (O_APPEND, outside the
database) each letter it really adds to a batch ("accepted") and each one it recognises by
its idempotency key ("known"); the first time, it kills its own process with SIGKILL right
after accepting — between the provider's acceptance and Mailroom's write.
"""

from __future__ import annotations

import os
import signal

from mailroom.letters.models import Letter
from mailroom.letters.providers import register_provider
from mailroom.letters.providers.local import LocalPrintRoom

COUNT_FILE = os.environ.get("MAILROOM_TEST_COUNT_FILE", "")
CRASH_FILE = os.environ.get("MAILROOM_TEST_CRASH_FILE", "")


def _count(word: str) -> None:
    if not COUNT_FILE:
        return
    fd = os.open(COUNT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{word}\n".encode())
    finally:
        os.close(fd)


@register_provider
class CrashingPrintRoom(LocalPrintRoom):
    kind = "test-crash"

    def submit(self, letter, pdf):
        known = Letter.objects.filter(pk=letter.pk, batch__isnull=False).exists()
        result = super().submit(letter, pdf)
        _count(f"{'known' if known else 'accepted'} {letter.pk}")
        if CRASH_FILE and not os.path.exists(CRASH_FILE):
            open(CRASH_FILE, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return result
