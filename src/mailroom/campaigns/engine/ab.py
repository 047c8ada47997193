"""A/B tests: a sample of the audience gets variant A or B (half each), the others wait
(variant "w"); after `ab_hours` the variant with the better open or click rate is chosen
and the waiting recipients get it — once, whichever worker decides.

- `assign(campaign)`: after the audience is resolved, draws the sample (a seeded shuffle of
  the pending recipients: the same draw if a crashed pass is redone).
- `waiting(campaign)`: the campaign's recipients held for the winner.
- `decide_due(now)`: campaigns whose test time is up get their winner (a conditional UPDATE:
  only one worker wins the race), the waiting recipients that variant, and go back to the
  queue ("preparing"); the figures are kept on the campaign and in the audit log.
Rates count people: a machine open (privacy proxy, scanner) is not an open; a tie keeps A.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from mailroom.campaigns.campaign_models import Campaign, CampaignRecipient
from mailroom.core.services import audit

Status = CampaignRecipient.Status
State = Campaign.State
WAITING = "w"
CHUNK = 1000


def assign(campaign: Campaign) -> None:
    """Draw the test sample among the pending recipients; everyone else waits."""
    if not campaign.ab_test:
        return
    pending = CampaignRecipient.objects.filter(campaign_id=campaign.pk, status=Status.PENDING)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    if not ids:
        return
    size = min(len(ids), max(2, round(len(ids) * campaign.ab_sample / 100)))
    sample = random.Random(campaign.pk).sample(ids, size)
    pending.update(variant=WAITING)
    for variant, chosen in (("a", sample[: (size + 1) // 2]), ("b", sample[(size + 1) // 2:])):
        for first in range(0, len(chosen), CHUNK):
            CampaignRecipient.objects.filter(pk__in=chosen[first:first + CHUNK]).update(
                variant=variant)


def waiting(campaign: Campaign):
    return CampaignRecipient.objects.filter(campaign_id=campaign.pk, variant=WAITING,
                                            status=Status.PENDING)


def waiting_note(campaign: Campaign) -> str:
    at = (campaign.started_at or timezone.now()) + timedelta(hours=campaign.ab_hours)
    metric = "open" if campaign.ab_metric == "opened" else "click"
    return (f"A/B test: the sample is on its way; at {timezone.localtime(at):%Y-%m-%d %H:%M} "
            f"the variant with the better {metric} rate goes to the other "
            f"{waiting(campaign).count():,} recipients.")


def figures(campaign: Campaign) -> dict[str, dict[str, int | float]]:
    """{"a": {"sent": n, "opened": n, "clicked": n, "rate": percent}, "b": {…}}."""
    counted = (CampaignRecipient.objects.filter(campaign_id=campaign.pk, variant__in=["a", "b"])
               .values("variant").annotate(
                   sent=Count("id", filter=Q(status__in=[Status.SENT, Status.BOUNCED])
                              | Q(mail__sent_at__isnull=False)),
                   opened=Count("id", filter=Q(opened_at__isnull=False, machine_open=False)),
                   clicked=Count("id", filter=Q(clicked_at__isnull=False))))
    out: dict[str, dict[str, int | float]] = {v: {"sent": 0, "opened": 0, "clicked": 0}
                                              for v in ("a", "b")}
    for row in counted:
        out[row["variant"]] = {k: row[k] for k in ("sent", "opened", "clicked")}
    for row in out.values():
        base = row["sent"]
        row["rate"] = round(100 * row[campaign.ab_metric] / base, 1) if base else 0.0
    return out


def decide_due(now=None) -> int:
    """Choose the winner of every test whose time is up; the number decided."""
    now = now or timezone.now()
    decided = 0
    for campaign in Campaign.objects.filter(state=State.SENDING, ab_test=True, ab_winner="",
                                            started_at__isnull=False):
        if campaign.started_at + timedelta(hours=campaign.ab_hours) > now:
            continue
        decided += decide(campaign, now=now)
    return decided


def decide(campaign: Campaign, *, now=None) -> int:
    now = now or timezone.now()
    counts = figures(campaign)
    winner = "b" if counts["b"]["rate"] > counts["a"]["rate"] else "a"
    metric = "opens" if campaign.ab_metric == "opened" else "clicks"
    loser = "a" if winner == "b" else "b"
    reason = (f"A/B test: {winner.upper()} won with {counts[winner]['rate']}% {metric} "
              f"({counts[winner][campaign.ab_metric]} of {counts[winner]['sent']}) against "
              f"{counts[loser]['rate']}% for {loser.upper()}; it goes to everyone else.")
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, state=State.SENDING,
                                       ab_winner="").update(
                ab_winner=winner, ab_decided_at=now, ab_figures=counts,
                state=State.PREPARING, state_reason=reason, updated_at=now):
            return 0  # another worker decided, or the campaign was paused or cancelled
        waiting(campaign).update(variant=winner)
        audit("campaigns.campaign.ab_winner", actor=None, obj=campaign,
              after={"winner": winner, "figures": counts})
    return 1
