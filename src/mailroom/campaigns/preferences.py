"""What a campaign's recipient does from the mail's links, without signing in: the writers
behind the one-click unsubscribe (RFC 8058) and the preference centre (public_views.py).

The person is the trace's address (and contact) in the campaign's company; the signed token
names the trace (tokens.py). Everything is idempotent and keeps its evidence: an
unsubscription says how, when and from which IP on the subscription; a list checked again is
the person's own new consent (`subscribe(..., resubscribe=True)`, source "form", with how,
when and IP); "Unsubscribe from all" also puts the address on the suppression list.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailroom.campaigns import services, suppression, tokens
from mailroom.campaigns.models import (
    CampaignEvent,
    CampaignRecipient,
    MailingList,
    Subscription,
    Suppression,
)
from mailroom.contacts.models import Partner

Status = Subscription.Status
ACTIVE = (Status.SUBSCRIBED, Status.UNCONFIRMED)


def read_link(token: str) -> CampaignRecipient | None:
    """The trace an unsubscribe token names, or None (forged, edited, or another tenant's)."""
    numbers = tokens.read(tokens.UNSUBSCRIBE, token)
    if numbers is None:
        return None
    company_id, recipient_id = numbers
    return (CampaignRecipient.objects.select_related("campaign", "campaign__company", "partner")
            .filter(pk=recipient_id, campaign__company_id=company_id).first())


def _address(trace: CampaignRecipient) -> str:
    return trace.email.strip().lower()


def person_subscriptions(trace: CampaignRecipient):
    """The person's subscriptions in the campaign's company (by contact and by address)."""
    who = Q(email=_address(trace))
    if trace.partner_id:
        who |= Q(partner_id=trace.partner_id)
    return Subscription.objects.filter(who, company_id=trace.campaign.company_id)


@dataclass
class Choice:
    mailing_list: MailingList
    subscribed: bool
    sent_to: bool  # this campaign was sent to this list


def choices(trace: CampaignRecipient) -> list[Choice]:
    """The lists shown: those the campaign was sent to, then every public list of the
    company; checked when the person is on it (subscribed or awaiting confirmation)."""
    campaign = trace.campaign
    sent_to = {ml.pk: ml for ml in campaign.lists.filter(active=True)}
    public = MailingList.objects.filter(company_id=campaign.company_id, public=True,
                                        active=True).exclude(pk__in=sent_to)
    on = set(person_subscriptions(trace).filter(status__in=ACTIVE)
             .values_list("mailing_list_id", flat=True))
    return ([Choice(ml, ml.pk in on, True) for ml in sent_to.values()]
            + [Choice(ml, ml.pk in on, False) for ml in public])


def _stamp(ip: str | None) -> str:
    when = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}, IP {ip}" if ip else when


def _mark_unsubscribed(trace: CampaignRecipient, how: str) -> None:
    """The trace's first unsubscription and its event; later ones change nothing."""
    locked = CampaignRecipient.objects.select_for_update().get(pk=trace.pk)
    if locked.unsubscribed_at is not None:
        trace.unsubscribed_at = locked.unsubscribed_at
        return
    now = timezone.now()
    CampaignRecipient.objects.filter(pk=trace.pk).update(unsubscribed_at=now)
    CampaignEvent.objects.create(campaign_id=trace.campaign_id, recipient_id=trace.pk,
                                 kind=CampaignEvent.Kind.UNSUBSCRIBED, at=now,
                                 detail=how[:500])
    trace.unsubscribed_at = now


def _leave(subscriptions, reason: str) -> list[str]:
    left = []
    for subscription in subscriptions.select_related("mailing_list"):
        services.unsubscribe(subscription, actor=None, reason=reason)
        left.append(subscription.mailing_list.name)
    return left


def one_click(trace: CampaignRecipient, *, ip: str | None,
              via: str = "one-click unsubscribe") -> list[str]:
    """RFC 8058: leave every list the campaign was sent to (a campaign sent to a segment, not
    to lists: the address goes on the suppression list). The names of the lists left (empty
    when already off them all)."""
    campaign = trace.campaign
    how = f"{via} from campaign “{campaign.name}”"
    with transaction.atomic():
        left = _leave(person_subscriptions(trace).filter(
            mailing_list__in=campaign.lists.all(), status__in=ACTIVE), f"{how}, {_stamp(ip)}")
        if not campaign.lists.exists():  # sent to a segment: no list to leave
            suppression.suppress(campaign.company, _address(trace),
                                 Suppression.Reason.UNSUBSCRIBED, actor=None,
                                 note=f"{how}, {_stamp(ip)}")
        _mark_unsubscribed(trace, how)
    return left


def _partner(trace: CampaignRecipient) -> Partner | None:
    if trace.partner_id:
        return trace.partner
    subscription = person_subscriptions(trace).select_related("partner").first()
    if subscription is not None:
        return subscription.partner
    return (Partner.objects.filter(company_id=trace.campaign.company_id,
                                   email__iexact=_address(trace)).order_by("id").first())


def save_choices(trace: CampaignRecipient, wanted: set[int], *,
                 ip: str | None) -> tuple[list[str], list[str]]:
    """Make the person's lists those checked among the ones shown: (joined, left) names.
    Joining is their own new consent; leaving a list this campaign was sent to counts as an
    unsubscription from the campaign."""
    campaign = trace.campaign
    shown = choices(trace)
    joined: list[str] = []
    left: list[str] = []
    with transaction.atomic():
        stop = [c.mailing_list.pk for c in shown if c.subscribed
                and c.mailing_list.pk not in wanted]
        if stop:
            left = _leave(person_subscriptions(trace).filter(mailing_list_id__in=stop,
                                                             status__in=ACTIVE),
                          f"preference centre, {_stamp(ip)}")
            if any(c.sent_to for c in shown if c.mailing_list.pk in stop):
                _mark_unsubscribed(trace, "preference centre")
        start = [c.mailing_list for c in shown if not c.subscribed
                 and c.mailing_list.pk in wanted]
        if start:
            partner = _partner(trace)
            if partner is None:
                raise ValidationError("We do not know this address well enough to add it "
                                      "to a list here; please sign up on our website.")
            if partner.is_blacklisted:
                raise ValidationError(f"{campaign.company.name} no longer sends mailings "
                                      "to this address; please contact them.")
            how = f"preference centre (link in “{campaign.subject}”)"
            for mailing_list in start:
                services.subscribe(mailing_list, partner, actor=None,
                                   source=Subscription.Source.FORM, consent_how=how,
                                   consent_at=timezone.now(), consent_ip=ip,
                                   resubscribe=True)
                joined.append(mailing_list.name)
            # their own "unsubscribe from all" is undone by their own new choice
            own = Suppression.objects.filter(company_id=campaign.company_id,
                                             email=_address(trace),
                                             reason=Suppression.Reason.UNSUBSCRIBED)
            if own.exists():
                suppression.unsuppress(campaign.company, _address(trace), actor=None,
                                       note="subscribed again in the preference centre")
    return joined, left


def unsubscribe_all(trace: CampaignRecipient, *, ip: str | None) -> list[str]:
    """Leave every list of the company and go on its suppression list."""
    campaign = trace.campaign
    how = f"unsubscribe from all in the preference centre, {_stamp(ip)}"
    with transaction.atomic():
        left = _leave(person_subscriptions(trace).filter(status__in=ACTIVE), how)
        suppression.suppress(campaign.company, _address(trace),
                             Suppression.Reason.UNSUBSCRIBED, actor=None,
                             note=f"from campaign “{campaign.name}”: {how}")
        _mark_unsubscribed(trace, "unsubscribe from all")
    return left
