"""The scheduler: slots, schedules, the compare-and-swap claim and how runs are recorded.

Real concurrency (several worker processes on SQLite and PostgreSQL) is in
test_processes.py; here the race is staged with two stale copies of one job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from mailroom.core import cron
from mailroom.core.models import CronJob, CronRun

T0 = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture(autouse=True)
def _no_other_jobs(db):
    # default jobs created by migrate (prune_cron_runs) must not take part in claims
    CronJob.objects.all().delete()


def due_job(task: str = "noop", schedule: str = "@every 1m", **fields) -> CronJob:
    return CronJob.objects.create(name=fields.pop("name", task), task=task, schedule=schedule,
                                  next_run_at=timezone.now() - timedelta(seconds=1), **fields)


# --- next_run ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        ("@every 30s", T0, T0 + timedelta(seconds=30)),
        ("@every 30s", T0 + timedelta(seconds=5), T0 + timedelta(seconds=30)),
        # exactly on a slot: the next one, never the same one again
        ("@every 30s", T0 + timedelta(seconds=60), T0 + timedelta(seconds=90)),
        ("@every 5m", T0 + timedelta(minutes=7), T0 + timedelta(minutes=10)),
        ("@every 1h", T0 + timedelta(minutes=1), T0 + timedelta(hours=1)),
        ("@every 1d", T0, T0 + timedelta(days=1)),
    ],
)
def test_every_next_slot_stays_on_the_grid(schedule, now, expected):
    assert cron.next_run(schedule, T0, now) == expected


def test_every_skips_missed_slots_instead_of_bursting():
    # the workers were down for 10 minutes: one run now-ish, not twenty catch-up runs
    now = T0 + timedelta(minutes=10, seconds=7)
    upcoming = cron.next_run("@every 30s", T0, now)
    assert upcoming == T0 + timedelta(minutes=10, seconds=30)
    assert now < upcoming <= now + timedelta(seconds=30)


def test_crontab_line_next_slot():
    assert cron.next_run("0 9 * * 1", T0, T0) == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert cron.next_run("*/15 * * * *", T0, T0 + timedelta(minutes=1)) == T0 + timedelta(
        minutes=15)


def test_crontab_skips_missed_slots():
    long_ago = T0 - timedelta(days=3)
    assert cron.next_run("0 * * * *", long_ago, T0) == T0 + timedelta(hours=1)


def test_crontab_is_read_in_the_configured_time_zone():
    with timezone.override("Europe/Paris"):  # UTC+1 in March before the DST switch
        upcoming = cron.next_run("0 9 * * *", T0, T0)
    assert upcoming == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)


def test_first_run_is_now_for_intervals_and_next_slot_for_crontab():
    assert cron.first_run("@every 5m", T0) == T0
    assert cron.first_run("30 10 * * *", T0) == T0 + timedelta(minutes=30)


# --- validate_schedule ---------------------------------------------------------------------

@pytest.mark.parametrize("schedule", ["@every 30s", "@every 5m", "@every 2h", "@every 1d",
                                      "0 9 * * 1", "*/5 * * * *", "@daily"])
def test_valid_schedules(schedule):
    cron.validate_schedule(schedule)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("@every 0s", "at least one second"),
        ("@every 5x", "neither"),
        ("@every", "neither"),
        ("every 5m", "neither"),
        ("61 * * * *", "neither"),
        ("", "neither"),
        ("0 9 * *", "neither"),
    ],
)
def test_invalid_schedules_have_a_clear_error(schedule, message):
    with pytest.raises(ValueError, match=message):
        cron.validate_schedule(schedule)


def test_register_task_rejects_a_bad_default_schedule():
    with pytest.raises(ValueError):
        cron.register_task("never_registered", schedule="whenever")
    assert "never_registered" not in cron.TASKS


# --- claiming ------------------------------------------------------------------------------

def test_two_claims_of_the_same_slot_only_one_succeeds():
    due_job()
    # two workers read the job at the same moment, then both try to claim the slot they saw
    seen_by_a = CronJob.objects.get()
    seen_by_b = CronJob.objects.get()
    slot = seen_by_a.next_run_at
    run_a = cron.try_claim(seen_by_a, seen_by_a.next_run_at, "worker-a")
    run_b = cron.try_claim(seen_by_b, seen_by_b.next_run_at, "worker-b")
    assert run_a is not None and run_b is None
    assert list(CronRun.objects.values_list("scheduled_for", "worker")) == [(slot, "worker-a")]
    job = CronJob.objects.get()
    assert job.next_run_at > timezone.now() - timedelta(seconds=1)
    assert job.next_run_at == slot + timedelta(minutes=1)


def test_a_slot_is_not_due_again_once_claimed():
    due_job()
    now = timezone.now()
    assert cron.claim_due_job("a", now) is not None
    assert cron.claim_due_job("b", now) is None
    assert CronRun.objects.count() == 1


def test_a_job_still_running_is_not_claimed_again():
    job = due_job(schedule="@every 1s")
    job, run = cron.claim_due_job("a")
    # its next slot comes due while the first run is still going
    later = timezone.now() + timedelta(seconds=5)
    assert cron.claim_due_job("b", later) is None
    cron.execute(job, run, "a")
    assert cron.claim_due_job("b", later) is not None


def test_an_abandoned_run_is_marked_failed_after_its_lease():
    job = due_job()
    CronRun.objects.create(job=job, scheduled_for=job.next_run_at - timedelta(hours=2),
                           started_at=timezone.now() - cron.RUN_LEASE - timedelta(minutes=1),
                           worker="dead-worker")
    claimed = cron.claim_due_job("alive")
    assert claimed is not None
    old = CronRun.objects.get(worker="dead-worker")
    assert old.ok is False and old.finished_at is not None
    assert "Abandoned" in old.result


def test_a_job_with_a_broken_schedule_is_disabled_with_the_reason():
    job = due_job(schedule="@every 1m")
    CronJob.objects.filter(pk=job.pk).update(schedule="sometimes")
    assert cron.run_due_job("w") is False
    job.refresh_from_db()
    assert job.enabled is False and job.last_ok is False
    assert "sometimes" in job.last_result


# --- running -------------------------------------------------------------------------------

def test_a_run_is_recorded_on_the_run_and_the_job():
    due_job()
    assert cron.run_due_job("worker-1") is True
    job = CronJob.objects.get()
    run = CronRun.objects.get()
    assert (run.worker, run.ok, run.result) == ("worker-1", True, "ok")
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert (job.last_ok, job.last_result, job.run_count) == (True, "ok", 1)
    assert job.last_run_at == run.started_at and job.last_duration_ms is not None


def test_a_failing_task_records_last_ok_false_and_the_error(monkeypatch):
    def explode():
        raise RuntimeError("the mail server said no")

    monkeypatch.setitem(cron.TASKS, "explode", explode)
    due_job("explode")
    assert cron.run_due_job("w") is True
    job = CronJob.objects.get()
    assert job.last_ok is False
    assert "RuntimeError: the mail server said no" in job.last_result
    run = CronRun.objects.get()
    assert run.ok is False and "the mail server said no" in run.result
    assert run.finished_at is not None


def test_an_unknown_task_is_recorded_as_a_failure():
    due_job("no_such_task")
    assert cron.run_due_job("w") is True
    job = CronJob.objects.get()
    assert job.last_ok is False
    assert "No task named 'no_such_task'" in job.last_result


def test_disabled_jobs_are_not_run():
    due_job(enabled=False)
    assert cron.run_due_job("w") is False
    assert not CronRun.objects.exists()
    assert CronJob.objects.get().run_count == 0


def test_jobs_not_yet_due_are_not_run():
    CronJob.objects.create(name="later", task="noop", schedule="@every 1m",
                           next_run_at=timezone.now() + timedelta(minutes=1))
    assert cron.run_due_job("w") is False


def test_a_task_sees_its_job_slot_and_worker(monkeypatch):
    seen = []
    monkeypatch.setitem(cron.TASKS, "look", lambda: seen.append(cron.current_run()))
    job = due_job("look")
    slot = job.next_run_at
    cron.run_due_job("worker-7")
    (context,) = seen
    assert (context.job.pk, context.slot, context.worker) == (job.pk, slot, "worker-7")
    assert cron.current_run() is None


# --- jobs created by code ------------------------------------------------------------------

def test_migrate_creates_default_jobs():
    from django.core.management.sql import emit_post_migrate_signal

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    job = CronJob.objects.get(name="prune_cron_runs")
    assert (job.task, job.schedule, job.enabled) == ("prune_cron_runs", "17 3 * * *", True)
    assert job.next_run_at > timezone.now()  # a daily job waits for its hour


def test_ensure_job_keeps_an_admin_edited_schedule():
    cron.ensure_job("digest", "noop", "@every 1h")
    CronJob.objects.filter(name="digest").update(schedule="0 8 * * 1", enabled=False)
    job = cron.ensure_job("digest", "noop", "@every 1h")
    assert (job.schedule, job.enabled) == ("0 8 * * 1", False)


def test_prune_cron_runs_forgets_old_runs():
    job = due_job()
    CronRun.objects.create(job=job, scheduled_for=T0, worker="w",
                           started_at=timezone.now() - timedelta(days=15))
    CronRun.objects.create(job=job, scheduled_for=T0 + timedelta(minutes=1), worker="w")
    assert cron.prune_cron_runs() == "deleted 1 run records"
    assert CronRun.objects.count() == 1


def test_a_slot_cannot_be_claimed_before_it_is_due():
    job = CronJob.objects.create(name="later", task="noop", schedule="@every 1m",
                                 next_run_at=timezone.now() + timedelta(minutes=1))
    assert cron.try_claim(job, job.next_run_at, "eager") is None
    assert not CronRun.objects.exists()
