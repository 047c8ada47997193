"""A campaign's audience: its lists and segments minus its excluded lists, one trace row per
address.

Segments' contacts join as subscribed rows without a subscription, merged in address order.

The subscriptions of the campaign's lists are read in address order (`.iterator()`, never
all at once), so every address's subscriptions come together: one row per address, however
many lists it is on. An address is sent to when one of its subscriptions is "subscribed";
unconfirmed ones are neither sent to nor counted. Every address left out is counted in
`Campaign.exclusions` by reason, and gets an EXCLUDED row saying why — except duplicates
(the same address subscribed on two lists), which are only counted.

Rows are written CHUNK at a time with one executemany each. A worker that dies mid-way
leaves `audience_done` false; the next pass deletes the partial rows and starts again (no
mail is queued before the audience is done, so nothing else points at them).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from itertools import groupby

from django.db import connection, transaction
from django.db.models import IntegerField, Q, Value
from django.db.models.functions import Collate, Lower
from django.utils import timezone

from mailroom.campaigns import segments
from mailroom.campaigns.engine import ab
from mailroom.campaigns.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    Exclusion,
    Subscription,
    Suppression,
)
from mailroom.contacts.models import Partner
from mailroom.core.rows import RowWriter
from mailroom.lib.addresses import InvalidAddress, plain_sendable, sendable_email
from mailroom.lib.formatting import normalize_locale

CHUNK = 2000
SubStatus = Subscription.Status
Status = CampaignRecipient.Status

# a person's worst answer wins when no list of the campaign still has them subscribed
_LEFT = {SubStatus.COMPLAINED: Exclusion.COMPLAINED, SubStatus.BOUNCED: Exclusion.BOUNCED,
         SubStatus.UNSUBSCRIBED: Exclusion.UNSUBSCRIBED}
_REASONS = {
    Exclusion.INVALID: "The address is not one mail can be sent to: {detail}",
    Exclusion.SUPPRESSED: "The address is on the suppression list.",
    Exclusion.BLACKLISTED: "The contact is blacklisted (bounces or opt-out).",
    Exclusion.UNSUBSCRIBED: "Unsubscribed from the campaign's lists.",
    Exclusion.BOUNCED: "Mail to this address bounced before.",
    Exclusion.COMPLAINED: "This person marked an earlier mail as spam.",
    Exclusion.EXCLUDED_LIST: "On a list the campaign excludes.",
}


def campaign_language(campaign: Campaign) -> str:
    return normalize_locale(campaign.lang or getattr(campaign.company, "language", "") or "en_US")


def language_chooser(campaign: Campaign):
    """contact language -> the language of the texts they get: a translation of the campaign
    in their language (exactly, else in another region of it), else the campaign's own."""
    own = campaign_language(campaign)
    translated = {normalize_locale(t.lang): normalize_locale(t.lang)
                  for t in campaign.translations.all()}
    by_language = {}
    for code in sorted(translated):
        by_language.setdefault(code.split("_")[0], code)
    cache: dict[str, str] = {}

    def choose(contact_lang: str) -> str:
        if contact_lang not in cache:
            code = normalize_locale(contact_lang, fallback=own)
            if code.split("_")[0] == own.split("_")[0]:
                cache[contact_lang] = own
            else:
                cache[contact_lang] = translated.get(code) or by_language.get(
                    code.split("_")[0], own)
        return cache[contact_lang]

    return choose


def _key(email: str) -> tuple[str, str]:
    """(dedupe key, "" when sendable, else the reason it is not)."""
    if plain_sendable(email):  # the usual case, without a full parse
        return email, ""
    try:
        address = sendable_email(email)
    except InvalidAddress as exc:
        return email.strip().lower(), str(exc)
    return address.lower(), ""


class _Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0

    @property
    def exclusions(self) -> dict[str, int]:
        return {reason: n for reason, n in sorted(self.counts.items()) if n}


def _rows(campaign: Campaign, tally: _Tally, *, languages: bool = True) -> Iterator[tuple]:
    """The audience, one row per unique address (the values of _VARYING), counted in
    `tally` as it goes."""
    lists = list(campaign.lists.values_list("pk", flat=True))
    excluded_lists = list(campaign.exclude_lists.values_list("pk", flat=True))
    company_id = campaign.company_id
    suppressed = {s.lower() for s in Suppression.objects.filter(company_id=company_id)
                  .values_list("email", flat=True).iterator(chunk_size=5000)}
    on_excluded = {e.lower() for e in Subscription.objects.filter(
        company_id=company_id, mailing_list_id__in=excluded_lists)
        .values_list("email", flat=True).iterator(chunk_size=5000)}
    choose = language_chooser(campaign) if languages else (lambda lang: "")
    by_address = _binary("email")
    subscriptions = (Subscription.objects.filter(company_id=company_id,
                                                 mailing_list_id__in=lists)
                     .exclude(status=SubStatus.UNCONFIRMED)
                     .order_by(by_address, "id")
                     .values_list("email", "status", "id", "partner_id", "partner__name",
                                  "partner__language", "partner__is_blacklisted")
                     .iterator(chunk_size=CHUNK))
    rows = heapq.merge(subscriptions, _segment_rows(campaign), key=lambda row: row[0])
    counts = tally.counts
    seen: set[str] = set()  # dedupe keys across the raw spellings grouped below
    for email, group in groupby(rows, key=lambda row: row[0].lower()):
        group = list(group)
        subscribed = [row for row in group if row[1] == SubStatus.SUBSCRIBED]
        key, invalid = _key(email)
        first = (subscribed or group)[0]
        _, _, sub_id, partner_id, name, contact_lang, blacklisted = first
        if key in seen:
            counts[Exclusion.DUPLICATE] += max(len(subscribed), 1)
            continue
        seen.add(key)
        counts[Exclusion.DUPLICATE] += max(len(subscribed) - 1, 0)
        exclusion, detail = "", ""
        if not subscribed:
            worst = {row[1] for row in group}
            exclusion = next(r for s, r in _LEFT.items() if s in worst)
        elif invalid:
            exclusion, detail = Exclusion.INVALID, invalid
        elif key in suppressed:
            exclusion = Exclusion.SUPPRESSED
        elif blacklisted:
            exclusion = Exclusion.BLACKLISTED
        elif key in on_excluded:
            exclusion = Exclusion.EXCLUDED_LIST
        if exclusion:
            counts[exclusion] += 1
        else:
            tally.total += 1
        yield (partner_id, sub_id, key if not invalid else email.strip()[:254],
               (name or "")[:200], choose(contact_lang or ""),
               Status.EXCLUDED if exclusion else Status.PENDING, exclusion,
               _REASONS[exclusion].format(detail=detail)[:500] if exclusion else "")


def _binary(field: str):
    """`field` compared byte by byte (code points: Python's own order), so the subscription
    and segment streams merge in one address order on both databases."""
    return Collate(field, "C" if connection.vendor == "postgresql" else "BINARY")


NO_SUBSCRIPTION = Value(None, output_field=IntegerField())


def _segment_rows(campaign: Campaign) -> Iterator[tuple]:
    """The contacts of the campaign's segments, as subscribed rows without a subscription,
    in address order (a segment is read now: who matches its conditions at send time)."""
    segment_list = list(campaign.segments.all())
    if not segment_list:
        return iter(())
    matching = Q()
    for segment in segment_list:
        matching |= Q(pk__in=segments.resolve(segment).values("pk"))
    return (Partner.objects.filter(matching, company_id=campaign.company_id)
            .exclude(email="").annotate(address=Lower("email"))
            .order_by(_binary("address"), "id")
            .values_list("address", Value(SubStatus.SUBSCRIBED), NO_SUBSCRIPTION, "id",
                         "name", "language", "is_blacklisted")
            .iterator(chunk_size=CHUNK))


def preview(campaign: Campaign) -> dict:
    """{"total": n, "exclusions": {reason: n}} for the lists as they are now; writes
    nothing (the editor's live count). The same walk as `resolve`, so the same figures."""
    tally = _Tally()
    for _ in _rows(campaign, tally, languages=False):
        pass
    return {"total": tally.total, "exclusions": tally.exclusions}


def resolve(campaign: Campaign) -> None:
    """Write the campaign's traces and exclusion counts; sets `total` and `audience_done`."""
    campaign = Campaign.objects.select_related("company").get(pk=campaign.pk)
    _forget_partial(campaign.pk)
    tally = _Tally()
    writer = RowWriter(CampaignRecipient, _VARYING, {
        "campaign_id": campaign.pk, "created_at": timezone.now(), "message_id": "",
        "variant": "a"})
    batch: list[tuple] = []
    for row in _rows(campaign, tally):
        batch.append(row)
        if len(batch) >= CHUNK:
            _write(writer, batch)
            batch = []
    _write(writer, batch)
    ab.assign(campaign)  # an A/B test's sample; the others wait for the winner
    Campaign.objects.filter(pk=campaign.pk).update(
        total=tally.total, exclusions=tally.exclusions, audience_done=True,
        updated_at=timezone.now())


def _forget_partial(campaign_id: int) -> None:
    """The rows of a pass that died before the audience was done (no mail points at them
    yet), deleted in SQL: Django's delete() would load each one to cascade."""
    CampaignEvent.objects.filter(campaign_id=campaign_id).delete()
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign_id])


_VARYING = ("partner_id", "subscription_id", "email", "name", "lang", "status", "exclusion",
            "reason")


def _write(writer: RowWriter, batch: list[tuple]) -> None:
    if batch:
        with transaction.atomic():
            writer.insert(batch)
