"""Periodic jobs that run exactly once per slot across any number of workers.

The claim is a compare-and-swap on `next_run_at`, in the same transaction as the CronRun row
for the slot:

    UPDATE core_cronjob SET next_run_at = <next> WHERE id = … AND next_run_at = <seen>

Only one worker's UPDATE matches: on PostgreSQL the second UPDATE waits for the first one's
row lock and then re-checks its WHERE against the new row; on SQLite the IMMEDIATE transaction
serialises writers. No lock is held while the job runs. A job whose previous run is still
going is not claimed again until that run ends (or its lease expires), so runs never overlap;
slots missed meanwhile are skipped, never replayed in a burst.

Tasks are plain functions registered by name (`@register_task`), in an app's `tasks.py`.
A task that passes `schedule=` also gets a job of the same name created by `migrate`.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from mailroom.core.models import CronJob, CronRun
from mailroom.core.steps import discover

log = logging.getLogger("mailroom.cron")

TASKS: dict[str, Callable[[], object]] = {}
DEFAULT_SCHEDULES: dict[str, str] = {}
# An unfinished run older than this is taken as abandoned (its worker died): the job may be
# claimed again and the old run is marked failed.
RUN_LEASE = timedelta(minutes=30)

_EVERY = re.compile(r"^@every\s+(\d+)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RunContext:
    job: CronJob
    slot: datetime
    worker: str
    run_id: int


_current: ContextVar[RunContext | None] = ContextVar("mailroom_cron_run", default=None)


def current_run() -> RunContext | None:
    """The job, slot and worker of the task being run (None outside a cron run)."""
    return _current.get()


def register_task(name: str, *, schedule: str | None = None) -> Callable:
    """Register a task. With `schedule`, `migrate` ensures a job `name` runs it on that
    schedule (an existing job keeps whatever an administrator changed)."""
    if schedule is not None:
        validate_schedule(schedule)

    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        TASKS[name] = func
        if schedule is not None:
            DEFAULT_SCHEDULES[name] = schedule
        return func

    return decorator


def _interval(schedule: str) -> timedelta | None:
    match = _EVERY.match(schedule.strip())
    if not match:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def validate_schedule(schedule: str) -> None:
    step = _interval(schedule)
    if step is not None:
        if step <= timedelta(0):
            raise ValueError(f'"{schedule}": an interval must be at least one second.')
        return
    if not croniter.is_valid(schedule.strip()):
        raise ValueError(f'"{schedule}" is neither "@every <n>s|m|h|d" nor a crontab line.')


def next_run(schedule: str, previous: datetime, now: datetime) -> datetime:
    """The first slot strictly after `now`.

    "@every" slots stay on the grid started by `previous`; slots missed while no worker ran
    are skipped rather than replayed in a burst. Crontab lines are read in the configured
    TIME_ZONE ("0 9 * * 1" is 9 o'clock local time).
    """
    step = _interval(schedule)
    if step is not None:
        if step <= timedelta(0):
            raise ValueError("An interval must be positive.")
        if previous > now:
            return previous
        return previous + step * ((now - previous) // step + 1)
    if not croniter.is_valid(schedule.strip()):
        raise ValueError(f'"{schedule}" is neither "@every <n>s|m|h|d" nor a crontab line.')
    local_now = timezone.localtime(now) if timezone.is_aware(now) else now
    return croniter(schedule.strip(), local_now).get_next(datetime)


def first_run(schedule: str, now: datetime) -> datetime:
    """When a new job first runs: at once for an interval, at the next slot for crontab."""
    if _interval(schedule) is not None:
        return now
    return next_run(schedule, now, now)


def ensure_job(name: str, task: str, schedule: str, *, enabled: bool = True) -> CronJob:
    """Create a job if it is missing; an existing job keeps its admin-edited schedule."""
    validate_schedule(schedule)
    job, _ = CronJob.objects.get_or_create(
        name=name,
        defaults={"task": task, "schedule": schedule, "enabled": enabled,
                  "next_run_at": first_run(schedule, timezone.now())},
    )
    return job


def ensure_default_jobs(sender=None, using: str = "default", apps=None, **kwargs) -> None:
    """post_migrate: a job for every task registered with a default schedule."""
    discover()
    try:
        model = (apps or _django_apps()).get_model("core", "CronJob")
    except LookupError:  # core was migrated to zero
        return
    now = timezone.now()
    for name, schedule in DEFAULT_SCHEDULES.items():
        model.objects.using(using).get_or_create(
            name=name,
            defaults={"task": name, "schedule": schedule, "next_run_at": first_run(schedule, now)},
        )


def _django_apps():
    from django.apps import apps

    return apps


def try_claim(job: CronJob, slot: datetime, worker: str,
              now: datetime | None = None) -> CronRun | None:
    """Claim `job` for `slot` (the `next_run_at` this worker saw). Returns the run record,
    or None when another worker got there first or the job's previous run is still going."""
    now = now or timezone.now()
    if slot > now:
        return None  # not due yet
    try:
        upcoming = next_run(job.schedule, slot, now)
    except ValueError as exc:
        CronJob.objects.filter(pk=job.pk).update(enabled=False, last_ok=False,
                                                 last_result=f"Disabled: {exc}")
        log.error("cron job %s disabled: %s", job.name, exc)
        return None
    running = CronRun.objects.filter(job=OuterRef("pk"), finished_at__isnull=True,
                                     started_at__gt=now - RUN_LEASE)
    with transaction.atomic():
        claimed = (
            CronJob.objects.filter(pk=job.pk, enabled=True, next_run_at=slot)
            .exclude(Exists(running))
            .update(next_run_at=upcoming)
        )
        if claimed != 1:
            return None
        CronRun.objects.filter(job=job, finished_at__isnull=True,
                               started_at__lte=now - RUN_LEASE).update(
            finished_at=now, ok=False,
            result="Abandoned: the worker stopped without finishing this run (lease expired).",
        )
        try:
            with transaction.atomic():
                run = CronRun.objects.create(job=job, scheduled_for=slot, worker=worker,
                                             started_at=now)
        except IntegrityError:
            # Only possible if someone moved next_run_at back onto a slot that already ran.
            log.error("cron job %s: slot %s already ran; skipping it", job.name, slot)
            return None
    job.next_run_at = upcoming
    return run


def claim_due_job(worker: str = "", now: datetime | None = None
                  ) -> tuple[CronJob, CronRun] | None:
    """Claim one due job; returns it with the run record of the claimed slot."""
    now = now or timezone.now()
    candidates = CronJob.objects.filter(enabled=True, next_run_at__lte=now).order_by(
        "next_run_at", "pk")[:10]
    for job in list(candidates):
        run = try_claim(job, job.next_run_at, worker, now)
        if run is not None:
            return job, run
    return None


def execute(job: CronJob, run: CronRun, worker: str) -> bool:
    """Run the task of a claimed job and record the outcome on the run and the job."""
    started = time.monotonic()
    token = _current.set(RunContext(job=job, slot=run.scheduled_for, worker=worker,
                                    run_id=run.pk))
    try:
        task = TASKS.get(job.task)
        if task is None:
            raise LookupError(f"No task named {job.task!r} is registered.")
        result = task()
        ok, text = True, "" if result is None else str(result)
    except Exception as exc:  # a job's failure is recorded, never fatal to the worker
        log.exception("cron job %s failed", job.name)
        ok, text = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    finally:
        _current.reset(token)
    duration_ms = int((time.monotonic() - started) * 1000)
    CronRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), ok=ok,
                                             result=text[:4000])
    CronJob.objects.filter(pk=job.pk).update(
        last_run_at=run.started_at, last_duration_ms=duration_ms, last_ok=ok,
        last_result=text[:4000], run_count=F("run_count") + 1,
    )
    log.log(logging.DEBUG if ok else logging.WARNING, "cron job %s (slot %s) %s in %d ms",
            job.name, run.scheduled_for.isoformat(), "ok" if ok else "failed", duration_ms)
    return ok


def run_due_job(worker_name: str) -> bool:
    """Worker step: run at most one due job. Returns True if it ran one."""
    claimed = claim_due_job(worker_name)
    if claimed is None:
        return False
    job, run = claimed
    execute(job, run, worker_name)
    return True


@register_task("noop")
def noop() -> str:
    """A job that does nothing; useful to check the scheduler end to end."""
    return "ok"


@register_task("prune_cron_runs", schedule="17 3 * * *")
def prune_cron_runs() -> str:
    """Daily: forget run records older than 14 days."""
    cutoff = timezone.now() - timedelta(days=14)
    deleted, _ = CronRun.objects.filter(started_at__lt=cutoff).delete()
    return f"deleted {deleted} run records"
