"""Projects' KPIs for digest emails (core.kpis)."""

from __future__ import annotations

from mailroom.business.projects.models import Task
from mailroom.core.kpis import Kpi, Unit, changelist_link, register


def tasks_done(company, start, end) -> int:
    return Task.objects.filter(company=company, stage=Task.Stage.DONE, done_at__gte=start,
                               done_at__lt=end).count()


def register_kpis() -> None:
    register(Kpi(key="projects.tasks_done", group="Projects", label="Tasks done",
                 unit=Unit.COUNT, compute=tasks_done, permission="projects.view_task",
                 position=10,
                 list_url=changelist_link("projects.task", "done_at", stage=Task.Stage.DONE),
                 description="Tasks moved to Done in the period and still done."))
