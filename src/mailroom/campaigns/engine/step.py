"""The `campaigns` worker step: due campaigns resolved, rendered and queued, a slice a pass.

1. Claim: a short transaction leases one due campaign (PREPARING, or SCHEDULED whose time
   has come; or one whose worker died: its lease ran out) and marks it PREPARING.
2. The audience is resolved if it is not yet (audience.py), then batches are queued
   (queue.py) until none is left — the campaign is then SENDING — or STEP_SECONDS have
   passed: the lease is let go and a later pass carries on. A paused or cancelled campaign
   is noticed at the next batch and left as it is.
3. With nothing to claim, SENDING campaigns whose every mail is final (sent, failed,
   cancelled) become DONE (at most every FINISH_CHECK_SECONDS per worker).

A mail that cannot be rendered (a placeholder the contact has no value for) fails the
campaign with the reason in plain words; mails already queued keep going and the reason says
how many.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mailroom.campaigns.engine import ab, audience
from mailroom.campaigns.engine.queue import Batcher, RenderFailed
from mailroom.campaigns.models import Campaign, CampaignRecipient
from mailroom.core.leasing import claim_one
from mailroom.core.steps import register_step
from mailroom.outgoing.models import OutgoingMail

log = logging.getLogger("mailroom.campaigns")

State = Campaign.State
Status = CampaignRecipient.Status
STEP_SECONDS = 10.0
FINISH_CHECK_SECONDS = 2.0
LEASE = timedelta(seconds=int(os.environ.get("MAILROOM_CAMPAIGN_LEASE_SECONDS", "300")))
_FINAL = {OutgoingMail.State.SENT: Status.SENT, OutgoingMail.State.EXCEPTION: Status.FAILED,
          OutgoingMail.State.CANCELLED: Status.CANCELLED}
_last_finish_check = 0.0


def _due(now):
    return (Campaign.objects.filter(Q(state=State.PREPARING)
                                    | Q(state=State.SCHEDULED, scheduled_at__lte=now))
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)))


def claim(owner: str, now=None) -> int | None:
    """Lease one due campaign to `owner`; its id, or None when there is nothing to do."""
    now = now or timezone.now()
    return claim_one(lambda: _due(now), ("scheduled_at", "id"), then=lambda pk: (
        Campaign.objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)),
        state=State.PREPARING, lease_owner=owner, lease_expires_at=now + LEASE,
        attempts=F("attempts") + 1, updated_at=now)


def _held(campaign_id: int, owner: str):
    return Campaign.objects.filter(pk=campaign_id, lease_owner=owner, state=State.PREPARING)


def _release(campaign_id: int, owner: str) -> None:
    Campaign.objects.filter(pk=campaign_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None)


def _fail(campaign_id: int, owner: str, reason: str) -> None:
    _held(campaign_id, owner).update(state=State.FAILED, state_reason=reason[:500],
                                     finished_at=timezone.now(), lease_owner="",
                                     lease_expires_at=None, updated_at=timezone.now())


def _queued_note(campaign_id: int) -> str:
    queued, total = Campaign.objects.filter(pk=campaign_id).values_list(
        "queued", "total").first() or (0, 0)
    if not queued:
        return "Nothing was queued."
    return (f"{queued} of {total} mails were queued before this and are being sent; the "
            f"other {total - queued} were not queued.")


def process(campaign_id: int, owner: str, *, max_batches: int | None = None,
            seconds: float = STEP_SECONDS) -> bool:
    """Work on the leased campaign. True when it is all queued (or failed), False when it
    was let go for a later pass (time up, paused, cancelled, lease lost)."""
    started = time.monotonic()
    try:
        campaign = Campaign.objects.select_related("company", "server").get(pk=campaign_id)
        if not campaign.audience_done:
            if not _held(campaign_id, owner).exists():
                return False
            audience.resolve(campaign)
            campaign.refresh_from_db()
        batcher = Batcher(campaign)
        batches = 0
        while True:
            done = batcher.queue_batch(owner)
            if done is None:  # paused, cancelled, or another worker holds it now
                _release(campaign_id, owner)
                return False
            if done == 0:
                # an A/B test's sample is queued: the others wait for the winner (ab.py)
                note = ab.waiting_note(campaign) if (
                    campaign.ab_test and not campaign.ab_winner
                    and ab.waiting(campaign).exists()) else campaign.state_reason
                _held(campaign_id, owner).update(state=State.SENDING, lease_owner="",
                                                 lease_expires_at=None, state_reason=note,
                                                 updated_at=timezone.now())
                return True
            batches += 1
            _held(campaign_id, owner).update(lease_expires_at=timezone.now() + LEASE)
            if (max_batches is not None and batches >= max_batches) or (
                    time.monotonic() - started > seconds):
                _release(campaign_id, owner)
                return False
    except RenderFailed as exc:
        _fail(campaign_id, owner,
              f"The mail could not be personalised for {exc.email}: {exc.error.message} "
              f"(the {exc.error.field}, line {exc.error.line or '?'}). "
              f"{_queued_note(campaign_id)}")
        return True
    except ValidationError as exc:
        _fail(campaign_id, owner, f"The campaign cannot be sent: {'; '.join(exc.messages)}. "
                                  f"{_queued_note(campaign_id)}")
        return True
    except Exception as exc:  # noqa: BLE001 - a failed campaign must say why, not vanish
        log.exception("campaigns: campaign %s failed", campaign_id)
        _fail(campaign_id, owner, f"Queueing stopped: {type(exc).__name__}: {exc}. "
                                  f"{_queued_note(campaign_id)}")
        return True


def finish_sent(now=None) -> int:
    """SENDING campaigns whose every queued mail is final become DONE; their traces say how
    each mail ended. The number of campaigns finished."""
    finished = 0
    for campaign_id in Campaign.objects.filter(state=State.SENDING).values_list("pk",
                                                                                flat=True):
        if CampaignRecipient.objects.filter(campaign_id=campaign_id,
                                            status=Status.PENDING).exists():
            continue  # an A/B test's recipients still wait for the winner
        waiting = CampaignRecipient.objects.filter(campaign_id=campaign_id,
                                                   status=Status.QUEUED)
        if waiting.filter(mail__isnull=False).exclude(mail__state__in=list(_FINAL)).exists():
            continue
        with transaction.atomic():
            if not Campaign.objects.select_for_update().filter(
                    pk=campaign_id, state=State.SENDING).exists():
                continue
            for mail_state, status in _FINAL.items():
                waiting.filter(mail__state=mail_state).update(status=status)
            waiting.filter(mail__isnull=True).update(status=Status.CANCELLED)
            moment = now or timezone.now()
            Campaign.objects.filter(pk=campaign_id).update(state=State.DONE,
                                                           finished_at=moment,
                                                           updated_at=moment)
        finished += 1
    return finished


@register_step("campaigns")
def campaigns_step(owner: str) -> bool:
    """One pass: claim a campaign and queue a slice of it; else finish sent campaigns. True
    when it did any work."""
    global _last_finish_check
    campaign_id = claim(owner)
    if campaign_id is not None:
        process(campaign_id, owner)
        return True
    if time.monotonic() - _last_finish_check < FINISH_CHECK_SECONDS:
        return False
    _last_finish_check = time.monotonic()
    return (ab.decide_due() + finish_sent()) > 0
