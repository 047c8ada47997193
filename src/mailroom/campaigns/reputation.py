"""The reputation guard: bounces and spam complaints reach the campaign that caused them, and a
campaign that hurts the company's sending reputation pauses itself.

The outbox runs our hooks (outgoing/hooks.py) inside record_bounce and record_complaint:
- a bounce marks the trace bounced with an event saying hard or soft and why; a hard bounce
  also marks the address's subscriptions bounced and suppresses it (reason bounced);
- a complaint (an ARF report, a provider's webhook) adds a `complained` event, marks the
  subscriptions complained and suppresses the address (reason complained).
Both then ask the guard: a running campaign with at least `guard_after` sent mails whose
hard-bounce rate is above `bounce_limit` or whose complaint rate is above `complaint_limit`
is paused by the system (audited as campaigns.campaign.guard_paused), its reason says the
figures in plain words, and its owner gets an email (the outbox; the house has no inbox
notification service a lower floor could call). Receivers judge senders by exactly these two
rates (Gmail and Yahoo ask bulk senders to stay under 0.3% complaints).

The guard pauses a campaign once: a person who resumes it has seen the figures and decided,
so it is not paused again behind their back. Counting is one aggregate query.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from mailroom.campaigns import campaign_services, suppression
from mailroom.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    Subscription,
    Suppression,
)
from mailroom.core.models import AuditLog
from mailroom.core.prepared import Prepared
from mailroom.outgoing import hooks
from mailroom.outgoing.models import FailureType, OutgoingMail, OutgoingRecipient
from mailroom.outgoing.services import enqueue
from mailroom.routing.models import AliasDomain

log = logging.getLogger("mailroom.campaigns")

Status = CampaignRecipient.Status
Kind = CampaignEvent.Kind
GUARD_ACTION = "guard paused"  # audited as campaigns.campaign.guard_paused
ACTIVE = (Subscription.Status.SUBSCRIBED, Subscription.Status.UNCONFIRMED)


def register() -> None:
    """From CampaignsConfig.ready()."""
    hooks.register_bounce_hook(on_bounce)
    hooks.register_complaint_hook(on_complaint)


_TRACE = Prepared(lambda mail_id: CampaignRecipient.objects.filter(mail_id=mail_id)
                  .order_by("pk").values_list("pk")[:1])


def _trace(mail: OutgoingMail) -> CampaignRecipient | None:
    # most mail that bounces is not a campaign's: a bare query compiled once says so, the
    # three-table one only for those that are
    found = _TRACE.rows(mail.pk)
    if not found:
        return None
    return (CampaignRecipient.objects.select_related("campaign", "campaign__company")
            .get(pk=found[0][0]))


def on_bounce(mail: OutgoingMail, recipient: OutgoingRecipient, *, hard: bool,
              reason: str) -> None:
    trace = _trace(mail)
    if trace is None:
        return  # not a campaign mail
    detail = f"{'Hard' if hard else 'Soft'} bounce: {reason}"[:500]
    CampaignRecipient.objects.filter(pk=trace.pk).exclude(status=Status.BOUNCED).update(
        status=Status.BOUNCED)
    if not CampaignEvent.objects.filter(recipient=trace, kind=Kind.BOUNCED,
                                        detail=detail).exists():
        CampaignEvent.objects.create(campaign_id=trace.campaign_id, recipient=trace,
                                     kind=Kind.BOUNCED, detail=detail)
    if hard:
        _mark_address(trace, Subscription.Status.BOUNCED, Suppression.Reason.BOUNCED,
                      f"Hard bounce on the campaign “{trace.campaign.name}”: {reason}")
    guard(trace.campaign)


def on_complaint(mail: OutgoingMail, recipient: OutgoingRecipient, *,
                 feedback_type: str) -> None:
    trace = _trace(mail)
    if trace is None:
        return
    if not CampaignEvent.objects.filter(recipient=trace, kind=Kind.COMPLAINED).exists():
        CampaignEvent.objects.create(campaign_id=trace.campaign_id, recipient=trace,
                                     kind=Kind.COMPLAINED,
                                     detail=f"Marked as spam ({feedback_type or 'abuse'})")
    _mark_address(trace, Subscription.Status.COMPLAINED, Suppression.Reason.COMPLAINED,
                  f"Marked the campaign “{trace.campaign.name}” as spam.")
    guard(trace.campaign)


def _mark_address(trace: CampaignRecipient, status: str, reason: str, note: str) -> None:
    """The address's subscriptions in the company (the trace's own included) take `status`
    and the address goes on the suppression list."""
    mine = Q(email=trace.email.lower())
    if trace.subscription_id:
        mine |= Q(pk=trace.subscription_id)
    subscriptions = Subscription.objects.filter(mine, company_id=trace.campaign.company_id)
    if status == Subscription.Status.COMPLAINED:  # stronger than any other status
        subscriptions = subscriptions.exclude(status=status)
    else:
        subscriptions = subscriptions.filter(status__in=ACTIVE)
    subscriptions.update(status=status, updated_at=timezone.now())
    try:
        suppression.suppress(trace.campaign.company, trace.email, reason, actor=None,
                             note=note[:500])
    except ValidationError as exc:  # an address the outbox accepted but we cannot normalise
        log.warning("campaign trace %s: %s not suppressed: %s", trace.pk, trace.email, exc)


# --- the guard ---------------------------------------------------------------------------------

def figures(campaign: Campaign) -> dict[str, int]:
    """sent (traces whose mail left), bounced_hard (of those, a hard bounce reported on the
    outbox recipient) and complained (a complaint event): one aggregate query."""
    hard = Exists(OutgoingRecipient.objects.filter(mail=OuterRef("mail"),
                                                   failure_type=FailureType.HARD_BOUNCE))
    complaint = Exists(CampaignEvent.objects.filter(recipient=OuterRef("pk"),
                                                    kind=Kind.COMPLAINED))
    sent = Q(status__in=[Status.SENT, Status.BOUNCED])
    return (CampaignRecipient.objects.filter(campaign=campaign)
            .annotate(hard=hard, complaint=complaint)
            .aggregate(sent=Count("pk", filter=sent),
                       bounced_hard=Count("pk", filter=sent & Q(hard=True)),
                       complained=Count("pk", filter=Q(complaint=True))))


def _number(value: Decimal | float) -> str:
    """5 → "5", 0.30 → "0.3", 6.3636 → "6.4", 0.333 → "0.33" (small rates keep two places, so
    a rate just above a 0.3% limit never reads as 0.3%)."""
    value = Decimal(str(value))
    places = Decimal("0.01") if abs(value) < 1 else Decimal("0.1")
    text = f"{value.quantize(places):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def verdict(campaign: Campaign, counts: dict[str, int]) -> str:
    """The guard's reason to pause, in plain words, or "" when the campaign may go on."""
    sent = counts["sent"]
    if not sent or sent < campaign.guard_after:
        return ""
    lines = []
    for count, limit, words in (
            (counts["bounced_hard"], campaign.bounce_limit, "bounced hard"),
            (counts["complained"], campaign.complaint_limit, "were reported as spam")):
        if Decimal(count) * 100 > Decimal(limit) * sent:
            rate = Decimal(count) * 100 / sent
            lines.append(f"{count} of {sent} sent mails {words} ({_number(rate)}%), above "
                         f"the {_number(limit)}% limit.")
    if not lines:
        return ""
    return ("Paused by the reputation guard: " + " ".join(lines))[:500]


def guard(campaign: Campaign) -> str:
    """Pause `campaign` if its rates say so: the reason when this call paused it, else ""."""
    if campaign.state not in campaign_services.RUNNING:
        return ""
    reason = verdict(campaign, figures(campaign))
    if not reason or _guard_paused_before(campaign):
        return ""
    try:
        paused = campaign_services._move(campaign, actor=None,
                                         allowed=campaign_services.RUNNING,
                                         to=Campaign.State.PAUSED, action=GUARD_ACTION,
                                         reason=reason)
    except ValidationError:
        return ""  # paused, cancelled or finished meanwhile
    log.warning("campaign %s paused by the reputation guard: %s", campaign.pk, reason)
    _notify_owner(paused, reason)
    return reason


def _guard_paused_before(campaign: Campaign) -> bool:
    return AuditLog.objects.filter(action="campaigns.campaign." + GUARD_ACTION.replace(" ", "_"),
                                   object_type=Campaign._meta.label,
                                   object_id=str(campaign.pk)).exists()


def _sender(company) -> str:
    domain = AliasDomain.objects.filter(company=company).order_by("sequence", "name").first()
    if domain is not None:
        return f"{company.name} <{domain.default_from_email}>"
    return company.email or ""


def _campaign_path(campaign: Campaign) -> str:
    for name in ("campaigns:campaign", "admin:campaigns_campaign_change"):
        try:
            return reverse(name, args=[campaign.pk])
        except NoReverseMatch:
            continue
    return "/"


def _notify_owner(campaign: Campaign, reason: str) -> None:
    """One email to the campaign's owner, in the pausing transaction (the outbox sends it)."""
    owner = campaign.created_by
    sender = _sender(campaign.company)
    if owner is None or not owner.email or not sender:
        log.warning("campaign %s: paused by the reputation guard, but there is no owner "
                    "address or company sender to tell", campaign.pk)
        return
    link = settings.BASE_URL.rstrip("/") + _campaign_path(campaign)
    text = (f"Your campaign “{campaign.name}” was paused.\n\n{reason}\n\n"
            "Receivers judge a sender by these rates: going on could send the company's "
            "other mail to spam folders too. The addresses that bounced or complained are "
            "on the suppression list already. Check where the list came from before you "
            f"resume the campaign; the guard will not pause it again.\n\n{link}\n")
    try:
        with transaction.atomic():  # a refused address must not undo the pause
            enqueue(company=campaign.company, email_from=sender,
                    to=[(owner.get_full_name() or owner.username, owner.email)],
                    subject=f"Campaign “{campaign.name}” paused by the reputation guard",
                    text=text, is_automatic=True, priority=OutgoingMail.Priority.HIGH,
                    idempotency_key=f"campaign-guard-{campaign.pk}")
    except ValidationError as exc:
        log.warning("campaign %s: paused by the reputation guard, but its owner cannot be "
                    "told: %s", campaign.pk, exc)
