"""The sender's last word on a campaign mail (outgoing.hooks.register_send_check).

Between queueing and sending, minutes or hours may pass: a person may unsubscribe, an address
may bounce elsewhere or be suppressed by hand, the campaign may be paused or cancelled. Just
before a claimed batch is built, `check(mails)` looks at the campaign mails in it (those a
CampaignRecipient trace points to) in one query and answers:

- cancel — the campaign was cancelled; the address is on the suppression list; the contact
  is blacklisted; or the person left every list of the campaign they were on (unsubscribed,
  bounced, complained). The trace becomes "Not sent" with the same reason.
- defer — the campaign is paused: the mail waits a few minutes, not counted as an attempt.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Lower

from mailroom.campaigns.models import (
    Campaign,
    CampaignRecipient,
    Subscription,
    Suppression,
)
from mailroom.outgoing import hooks

State = Campaign.State
Status = Subscription.Status
TraceStatus = CampaignRecipient.Status
ACTIVE = (Status.SUBSCRIBED, Status.UNCONFIRMED)
LEFT = (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED)

CANCELLED = "The campaign was cancelled after this mail was queued."
PAUSED = "The campaign is paused; this mail waits until it is resumed."
SUPPRESSED = "The address was put on the suppression list after this mail was queued."
BLACKLISTED = "The contact was blacklisted after this mail was queued."
LEFT_REASONS = {
    Status.UNSUBSCRIBED: "The recipient unsubscribed after this mail was queued.",
    Status.BOUNCED: "The recipient's address bounced after this mail was queued.",
    Status.COMPLAINED: "The recipient marked a mail of ours as spam after this mail was "
                       "queued.",
}


def _traces(mail_ids: list[int]):
    """The traces of the batch's campaign mails, with everything the verdict needs."""
    on_lists = Subscription.objects.filter(
        mailing_list__campaigns=OuterRef("campaign_id"), email=Lower(OuterRef("email")))
    return (CampaignRecipient.objects.filter(mail_id__in=mail_ids)
            .annotate(
                suppressed=Exists(Suppression.objects.filter(
                    company_id=OuterRef("campaign__company_id"),
                    email=Lower(OuterRef("email")))),
                still_on=Exists(on_lists.filter(status__in=ACTIVE)),
                left=Subquery(on_lists.filter(status__in=LEFT)
                              .order_by("-updated_at", "-id").values("status")[:1]))
            .values_list("pk", "mail_id", "status", "campaign__state",
                         "partner__is_blacklisted", "suppressed", "still_on", "left"))


def verdict(campaign_state: str, blacklisted: bool, suppressed: bool, still_on: bool,
            left: str | None) -> tuple[str, str] | None:
    if campaign_state == State.CANCELLED:
        return "cancel", CANCELLED
    if suppressed:
        return "cancel", SUPPRESSED
    if blacklisted:
        return "cancel", BLACKLISTED
    if left and not still_on:
        return "cancel", LEFT_REASONS[left]
    if campaign_state == State.PAUSED:
        return "defer", PAUSED
    return None


def check(mails) -> dict[int, tuple[str, str]]:
    """{mail id: ("cancel" | "defer", reason)} for the campaign mails of a claimed batch."""
    answers: dict[int, tuple[str, str]] = {}
    cancelled_traces: dict[str, list[int]] = defaultdict(list)
    for (pk, mail_id, status, state, blacklisted, suppressed, still_on,
         left) in _traces([m.pk for m in mails]):
        answer = verdict(state, bool(blacklisted), suppressed, still_on, left)
        if answer is None:
            continue
        answers[mail_id] = answer
        if answer[0] == "cancel" and status in (TraceStatus.PENDING, TraceStatus.QUEUED):
            cancelled_traces[answer[1]].append(pk)
    for reason, pks in cancelled_traces.items():
        CampaignRecipient.objects.filter(pk__in=pks).update(status=TraceStatus.CANCELLED,
                                                            reason=reason[:500])
    return answers


def register() -> None:
    """Called from CampaignsConfig.ready(); idempotent."""
    hooks.register_send_check(check)
