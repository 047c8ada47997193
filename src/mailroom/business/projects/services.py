"""Projects services: the only writers of projects and tasks."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mailroom.business.projects.models import Project, Task
from mailroom.chatter.services import save_record, set_state
from mailroom.routing.services import sync_record_alias


def save_project(project: Project, *, actor) -> Project:
    """Create or update a project; " Website " is taken as the alias "website"."""
    from django.db import transaction

    project.alias_name = (project.alias_name or "").strip().lower()
    with transaction.atomic():
        save_record(project, actor=actor)
        sync_record_alias(project, project.alias_name, record_type="projects.task",
                          defaults={"project": project.pk})
    return project


def save_task(task: Task, *, actor) -> Task:
    """Create or update a task; the customer defaults to the project's."""
    return save_record(task, actor=actor)


def set_stage(task: Task, stage: str, *, actor) -> Task:
    return set_state(task, stage, actor=actor)


def mark_done(task: Task, *, actor) -> Task:
    return set_stage(task, Task.Stage.DONE, actor=actor)


def start(task: Task, *, actor) -> Task:
    if task.stage in Task.CLOSED_STAGES:
        raise ValidationError("The task is closed.")
    return set_stage(task, Task.Stage.IN_PROGRESS, actor=actor)
