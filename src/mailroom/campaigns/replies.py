"""Replies to a campaign: its mails carry the campaign's reply address (a signed token), so
the router posts an answer on the campaign's chatter — its "Replies" — like on any record.
Here each reply is matched to the recipient it answers (In-Reply-To names their mail's
Message-ID; else the sender's address) and counted once: `replied_at` and a `replied` event.
"""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from mailroom.campaigns.campaign_models import Campaign, CampaignEvent, CampaignRecipient
from mailroom.chatter.models import Message

log = logging.getLogger("mailroom.campaigns")


def register() -> None:
    post_save.connect(_on_message, sender=Message, dispatch_uid="campaigns.replies")


def _on_message(sender, instance: Message, created: bool, **kwargs) -> None:
    if not created or instance.direction != Message.Direction.INCOMING:
        return
    if instance.content_type_id != ContentType.objects.get_for_model(Campaign).pk:
        return
    try:
        record_reply(instance)
    except Exception:  # counting must never stop the reply itself from being kept
        log.exception("campaigns: cannot count reply %s", instance.pk)


def _ids(value: str) -> list[str]:
    return [part for part in (value or "").split() if part]


def record_reply(message: Message) -> CampaignRecipient | None:
    """Mark the recipient `message` answers as replied (once); None when none matches."""
    traces = CampaignRecipient.objects.filter(campaign_id=message.object_id)
    answered = _ids(message.in_reply_to) + _ids(message.references)
    candidates = {mid for raw in answered for mid in (raw, raw.strip("<>"), f"<{raw.strip('<>')}>")}
    trace = traces.filter(message_id__in=candidates).first() if candidates else None
    if trace is None and message.email_from:
        address = message.email_from.rsplit("<", 1)[-1].rstrip(">").strip().lower()
        trace = traces.filter(email=address).first()
    if trace is None:
        return None
    with transaction.atomic():
        now = timezone.now()
        if CampaignRecipient.objects.filter(pk=trace.pk, replied_at__isnull=True).update(
                replied_at=now):
            CampaignEvent.objects.create(campaign_id=trace.campaign_id, recipient=trace,
                                         kind=CampaignEvent.Kind.REPLIED, at=now,
                                         detail=(message.subject or "")[:500])
    return trace
