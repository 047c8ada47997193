"""Pending traces become outbox mails, BATCH at a time, on the bulk lane.

A batch is rendered outside any transaction (on SQLite a transaction holds the one write
lock), then written in one: the campaign re-read under lock (a paused or cancelled campaign
is left alone, and so is one whose lease another worker took), the mails, their recipients
and the traces (QUEUED, with their mail and Message-ID) inserted with executemany, and
`queued` moved on. A trace with a mail is never queued again, so a crash between batches
loses nothing and sends nothing twice.

What `outgoing.services._build` checks per mail is checked here once per campaign (sender,
reply-to, server, header shapes: the same for every recipient) or once per recipient where
it can change (the address was proven sendable when the audience was resolved; the
contact's blacklist flag is read again for each batch, and a contact blacklisted since is
excluded instead of queued).
"""

from __future__ import annotations

from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from mailroom.campaigns.engine import ab
from mailroom.campaigns.engine.render import CampaignRenderer, _address_of, _one_line
from mailroom.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    Exclusion,
)
from mailroom.core.rows import RowWriter
from mailroom.lib.addresses import domain_of
from mailroom.lib.ids import make_message_id
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing import checks
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, Purpose
from mailroom.routing.services import reply_address

BATCH = 500
SENT_HOOK = "campaigns.sent"
Status = CampaignRecipient.Status


_MAIL_VARYING = ("subject", "body_html", "body_text", "headers", "message_id")


class RenderFailed(Exception):
    def __init__(self, email: str, error: TemplateError) -> None:
        super().__init__(f"{email}: {error}")
        self.email, self.error = email, error


class _Row(NamedTuple):
    id: int
    email: str
    name: str
    lang: str
    variant: str
    partner_id: int | None
    blacklisted: bool | None


class Batcher:
    """Queues one campaign's traces; what is the same for every mail is worked out once."""

    def __init__(self, campaign: Campaign, renderer: CampaignRenderer | None = None) -> None:
        self.campaign = campaign
        self.renderer = renderer or CampaignRenderer(campaign)
        if not campaign.email_from:
            raise ValidationError({"email_from": "The campaign has no sender address."})
        checks.mailbox("email_from", campaign.email_from)
        checks.mailboxes("reply_to", campaign.reply_to)
        if campaign.server_id and campaign.server.company_id != campaign.company_id:
            raise ValidationError({"server": "The server belongs to another company."})
        self.domain = domain_of(_address_of(campaign.email_from))
        self.content_type_id = ContentType.objects.get_for_model(Campaign).pk
        self.reply_to = campaign.reply_to or reply_address(
            campaign.company_id, self.content_type_id, campaign.pk)
        self.after = 0  # traces are queued in id order: the next batch starts after this

    def pending(self) -> list[_Row]:
        rows = [_Row(*row) for row in CampaignRecipient.objects.filter(
            campaign_id=self.campaign.pk, id__gt=self.after, status=Status.PENDING,
            mail__isnull=True).exclude(variant=ab.WAITING)
            .order_by("id").values_list("id", "email", "name", "lang", "variant", "partner_id",
                                        "partner__is_blacklisted")[:BATCH]]
        if rows:
            self.after = rows[-1].id
        return rows

    def _writers(self, now) -> tuple[RowWriter, RowWriter]:
        campaign = self.campaign
        mails = RowWriter(OutgoingMail, _MAIL_VARYING, {
            "company_id": campaign.company_id, "priority": OutgoingMail.Priority.LOW,
            "purpose": Purpose.BULK, "email_from": campaign.email_from,
            "reply_to": self.reply_to, "server_id": campaign.server_id,
            "content_type_id": self.content_type_id, "object_id": campaign.pk,
            "created_at": now, "next_attempt_at": now, "on_sent": SENT_HOOK})
        recipients = RowWriter(OutgoingRecipient, ("mail_id", "address", "name", "partner_id"),
                               {"kind": OutgoingRecipient.Kind.TO})
        return mails, recipients

    def queue_batch(self, owner: str) -> int | None:
        """Queue the next batch: how many traces it settled (0: none were left), or None
        when the campaign is not this worker's to advance any more."""
        rows = self.pending()
        if not rows:
            return 0
        now = timezone.now()
        mails, blacklisted = [], []
        for row in rows:
            if row.blacklisted:
                blacklisted.append(row.id)
                continue
            try:
                rendered = self.renderer.render(row)
            except TemplateError as exc:
                raise RenderFailed(row.email, exc) from exc
            mails.append((row, (rendered.subject, rendered.html, rendered.text,
                                rendered.headers, make_message_id(self.domain))))
        with transaction.atomic():
            held = (Campaign.objects.select_for_update()
                    .filter(pk=self.campaign.pk, lease_owner=owner,
                            state=Campaign.State.PREPARING).first())
            if held is None:
                return None
            still = set(CampaignRecipient.objects.filter(
                pk__in=[r.id for r in rows], status=Status.PENDING, mail__isnull=True)
                .values_list("pk", flat=True))
            mails = [(row, mail) for row, mail in mails if row.id in still]
            blacklisted = [pk for pk in blacklisted if pk in still]
            self._write(mails, blacklisted, now)
            held.queued += len(mails)
            if blacklisted:
                held.total -= len(blacklisted)
                held.exclusions[Exclusion.BLACKLISTED] = (
                    held.exclusions.get(Exclusion.BLACKLISTED, 0) + len(blacklisted))
            held.updated_at = now
            held.save(update_fields=["queued", "total", "exclusions", "updated_at"])
        return len(rows)

    def _write(self, mails, blacklisted, now) -> None:
        mail_writer, recipient_writer = self._writers(now)
        mail_writer.insert(values for _, values in mails)
        message_ids = [values[-1] for _, values in mails]
        ids = {}
        for first in range(0, len(message_ids), 500):
            ids.update(OutgoingMail.objects.filter(
                message_id__in=message_ids[first:first + 500]).values_list("message_id", "id"))
        recipient_writer.insert((ids[values[-1]], row.email, _one_line(row.name)[:200],
                                 row.partner_id) for row, values in mails)
        _mark_queued([(row.id, ids[values[-1]], values[-1]) for row, values in mails])
        if blacklisted:
            CampaignRecipient.objects.filter(pk__in=blacklisted).update(
                status=Status.EXCLUDED, exclusion=Exclusion.BLACKLISTED,
                reason="The contact was blacklisted before the mail was queued.")


def _mark_queued(traces: list[tuple[int, int, str]]) -> None:
    """(trace id, mail id, Message-ID) each: QUEUED with its mail. One UPDATE joined to a
    VALUES list on PostgreSQL, executemany on SQLite (fast there: no round trips)."""
    if not traces:
        return
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for first in range(0, len(traces), 500):
                chunk = traces[first:first + 500]
                cursor.execute(
                    f"UPDATE {table} AS t SET status = %s, mail_id = v.mail_id, "
                    f"message_id = v.message_id FROM (VALUES "
                    f"{', '.join(['(%s::bigint, %s::bigint, %s::text)'] * len(chunk))}) "
                    f"AS v(id, mail_id, message_id) WHERE t.id = v.id",
                    [Status.QUEUED, *(value for trace in chunk for value in trace)])
        else:
            cursor.executemany(f"UPDATE {table} SET status = %s, mail_id = %s, "
                               f"message_id = %s WHERE id = %s",
                               [(Status.QUEUED, mail_id, message_id, trace_id)
                                for trace_id, mail_id, message_id in traces])


def mark_sent(mail: OutgoingMail) -> None:
    """The `campaigns.sent` delivery hook: the trace is SENT and says so, in the settle
    transaction (a worker killed in between redoes both)."""
    row = (CampaignRecipient.objects.filter(mail_id=mail.pk)
           .values_list("id", "campaign_id").first())
    if row is None:
        return
    # a bounce can only follow a send: one recorded already (the first send of a mail that
    # was sent again after its worker died before settling) is not undone
    if CampaignRecipient.objects.filter(pk=row[0]).exclude(
            status__in=(Status.SENT, Status.BOUNCED)).update(status=Status.SENT):
        CampaignEvent.objects.create(campaign_id=row[1], recipient_id=row[0],
                                     kind=CampaignEvent.Kind.SENT,
                                     at=mail.sent_at or timezone.now())
