"""A mass send in the worker: "Send email…" on a record list, for many records at once.

The selection (record ids, in list order) is stored with the job; the worker renders and
queues it in batches (mass_engine.py) and moves `position` on in the same transaction as the
batch's mails and chatter entries, so a worker killed mid-way redoes at most the batch it
held and nothing is sent twice. One job per (company, batch): the page's reload or a second
click finds the same job.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class MassSend(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Rendering and queueing"
        DONE = "done", "Queued"
        FAILED = "failed", "Stopped"
        CANCELLED = "cancelled", "Cancelled"

    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey("templating.EmailTemplate", on_delete=models.SET_NULL,
                                 null=True, related_name="+")
    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE,
                                     related_name="+")
    batch = models.CharField(max_length=40)
    record_ids = models.JSONField(default=list)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              related_name="+")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    state_reason = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)  # records before this one are done
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list)  # [{"id", "label", "reason"}], the first 500
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "batch"],
                                               name="templating_mass_send_batch")]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"Mass send {self.batch[:8]} ({self.total} records)"

    @property
    def percent(self) -> int:
        return 100 * self.position // max(self.total, 1)

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED, self.State.CANCELLED)
