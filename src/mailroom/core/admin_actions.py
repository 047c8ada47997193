"""Bulk admin actions that call a service once per selected record.

Each record succeeds or fails on its own (one service call, one transaction), and refusals
are reported in plain words instead of a server error, so "Mark solved" on fifty tickets
solves the forty-eight that may be solved and says why the other two were not.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or exc.__class__.__name__


def apply_each(modeladmin, request, queryset, service: Callable, done: str) -> None:
    """Run `service(record, actor=request.user)` for each record and report the outcome."""
    succeeded = 0
    failures: list[str] = []
    for record in queryset:
        try:
            service(record, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            failures.append(f"{record}: {error_text(exc)}")
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}.", messages.SUCCESS)
    if failures:
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        modeladmin.message_user(request, "Not changed — " + "; ".join(failures[:5]) + more,
                                messages.ERROR)
