"""Logging filters named by settings.LOGGING.

Django logs every PermissionDenied on `django.request` as a WARNING *with its traceback*: an
ordinary "you may not open this" filled the console with ~45 lines of stack. The refusal is
expected behaviour, so it keeps its one line ("Forbidden (Permission denied): /path") and
loses the stack; real errors (500s) keep theirs.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info, tuple) and isinstance(exc_info[1],
                                                                   PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
