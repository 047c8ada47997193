"""Projects and their tasks; a project may take tasks by mail on its own alias."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mailroom.business.company_checks import check_company
from mailroom.business.timestamps import stamp, with_stamps
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned

alias_local_part = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9._+-]{0,62})$",
    "Use lowercase letters, digits, dots, dashes, plus or underscores, like 'website'.",
)


class Project(MailThread, CompanyOwned):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="project manager")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="projects", verbose_name="customer")
    alias_name = models.CharField(
        "email alias", max_length=64, blank=True, validators=[alias_local_part],
        help_text="Local part only, e.g. 'website': mail to website@<alias domain> "
                  "becomes a task in this project.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    tracked_fields = ("name", "user", "partner", "alias_name", "active")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "alias_name"], condition=~Q(alias_name=""),
                                    name="project_unique_alias"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        check_company(self, related=("partner",))


class Task(MailThread, CompanyOwned):
    class Stage(models.TextChoices):
        TODO = "todo", "To do"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        NORMAL = "0", "Normal"
        IMPORTANT = "1", "Important"

    CLOSED_STAGES = (Stage.DONE, Stage.CANCELLED)

    name = models.CharField("title", max_length=200)
    # Optional so mail to the generic "tasks" alias can land before anyone files it.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="tasks")
    description = models.TextField(blank=True)
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="tasks", verbose_name="customer")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="assignee")
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.TODO)
    deadline = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=1, choices=Priority.choices, default=Priority.NORMAL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    done_at = models.DateTimeField("done on", null=True, blank=True, editable=False)

    tracked_fields = ("stage", "project", "user", "deadline", "priority")

    class Meta:
        ordering = ["-priority", "deadline", "-id"]
        indexes = [models.Index(fields=["company", "stage"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        changed = [f for f in ("done_at",) if stamp(self, f, reached=self.stage == self.Stage.DONE)]
        super().save(*args, **with_stamps(kwargs, changed))

    def clean(self) -> None:
        if self.project_id and not self.partner_id:
            self.partner_id = self.project.partner_id
        check_company(self, related=("project", "partner"))

    @property
    def is_overdue(self) -> bool:
        return (self.deadline is not None and self.stage not in self.CLOSED_STAGES
                and self.deadline < timezone.localdate())
