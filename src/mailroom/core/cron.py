"""Periodic jobs that run exactly once per slot across any number of workers.

The claim is a compare-and-swap on `next_run_at`: `UPDATE … SET next_run_at = <next>
WHERE id = … AND next_run_at = <seen>`. Only one worker's UPDATE matches, on SQLite and on
PostgreSQL alike, and no lock is held while the job runs.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

from croniter import croniter
from django.db import IntegrityError, transaction
from django.utils import timezone

from mailroom.core.models import CronJob, CronRun

log = logging.getLogger("mailroom.cron")
TASKS: dict[str, Callable[[], object]] = {}
_EVERY = re.compile(r"^@every\s+(\d+)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register_task(name: str) -> Callable:
    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        TASKS[name] = func
        return func

    return decorator


def validate_schedule(schedule: str) -> None:
    schedule = schedule.strip()
    if _EVERY.match(schedule):
        return
    if not croniter.is_valid(schedule):
        raise ValueError(f'"{schedule}" is neither "@every <n>s|m|h|d" nor a crontab line.')


def next_run(schedule: str, previous: datetime, now: datetime) -> datetime:
    """The first slot after `now`; missed slots are skipped rather than replayed in a burst."""
    match = _EVERY.match(schedule.strip())
    if match:
        step = timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
        if step <= timedelta(0):
            raise ValueError("An interval must be positive.")
        missed = max(0, int((now - previous) / step))
        candidate = previous + step * (missed + 1) if previous <= now else previous + step
        return candidate
    return croniter(schedule, now).get_next(datetime)


def ensure_job(name: str, task: str, schedule: str, *, enabled: bool = True) -> CronJob:
    """Create a job if it is missing; an existing job keeps its admin-edited schedule."""
    validate_schedule(schedule)
    job, _ = CronJob.objects.get_or_create(
        name=name, defaults={"task": task, "schedule": schedule, "enabled": enabled}
    )
    return job


def claim_due_job(now: datetime | None = None) -> tuple[CronJob, datetime] | None:
    """Claim one due job; returns it with the slot it was claimed for."""
    now = now or timezone.now()
    candidates = list(
        CronJob.objects.filter(enabled=True, next_run_at__lte=now).order_by("next_run_at")[:10]
    )
    for job in candidates:
        slot = job.next_run_at
        try:
            upcoming = next_run(job.schedule, slot, now)
        except ValueError as exc:
            CronJob.objects.filter(pk=job.pk).update(enabled=False, last_ok=False,
                                                     last_result=str(exc))
            continue
        with transaction.atomic():
            claimed = CronJob.objects.filter(pk=job.pk, enabled=True, next_run_at=slot).update(
                next_run_at=upcoming
            )
        if claimed == 1:
            job.next_run_at = upcoming
            return job, slot
    return None


def run_due_job(worker_name: str) -> bool:
    """Worker step: run at most one due job. Returns True if it ran one."""
    claimed = claim_due_job()
    if claimed is None:
        return False
    job, slot = claimed
    try:
        with transaction.atomic():
            run = CronRun.objects.create(job=job, scheduled_for=slot, worker=worker_name)
    except IntegrityError:
        log.error("cron job %s slot %s was claimed twice; skipping", job.name, slot)
        return True
    started = time.monotonic()
    task = TASKS.get(job.task)
    try:
        if task is None:
            raise LookupError(f"No task named {job.task!r} is registered.")
        result = task()
        ok, text = True, "" if result is None else str(result)
    except Exception as exc:  # a job's failure is recorded, never fatal to the worker
        log.exception("cron job %s failed", job.name)
        ok, text = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = timezone.now()
    CronRun.objects.filter(pk=run.pk).update(finished_at=finished, ok=ok, result=text[:4000])
    CronJob.objects.filter(pk=job.pk).update(
        last_run_at=run.started_at, last_duration_ms=duration_ms, last_ok=ok,
        last_result=text[:4000], run_count=job.run_count + 1,
    )
    return True


@register_task("noop")
def noop() -> str:
    """A job that does nothing; useful to check the scheduler end to end."""
    return "ok"


@register_task("prune_cron_runs")
def prune_cron_runs() -> str:
    cutoff = timezone.now() - timedelta(days=14)
    deleted, _ = CronRun.objects.filter(started_at__lt=cutoff).delete()
    return f"deleted {deleted} run records"
