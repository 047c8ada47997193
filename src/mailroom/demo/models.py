"""What the demo mail catcher received: every message, kept whole, newest first.

The catcher (`mailroom catcher`, started by `mailroom run` in the embedded default) is an SMTP
listener on loopback that the demo company's outgoing server points at, so a newcomer can send
mail and read it here without any of it leaving the machine. The raw bytes live in the blob
store (`core.blobs`), like received mail; this row holds what the list shows.
"""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from mailroom.core.scoping import CompanyQuerySet


class CaughtMail(models.Model):
    # the company whose outbox sent it (matched by Message-ID); empty for mail that did not
    # come from Mailroom (a script, another program pointed at the catcher)
    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, null=True,
                                blank=True, related_name="+")
    received_at = models.DateTimeField(default=now, db_index=True)
    envelope_from = models.CharField(max_length=998, blank=True)
    envelope_to = models.JSONField(default=list)
    subject = models.CharField(max_length=998, blank=True)
    header_from = models.CharField(max_length=998, blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "caught mail"
        verbose_name_plural = "caught mail"

    def __str__(self) -> str:
        return self.subject or "(no subject)"
