"""What a claimed batch asks the database, read once for the whole batch.

Routing one message asked the same few questions every time, one query each: was this
Message-ID seen before, how much has this sender sent lately, which record do its References
name, is the sender a contact. Those queries, not the work, were most of a message's cost
(about 0.3-0.5 ms of Django and a round trip each). A batch of up to 50 messages asks them
together here, in about six queries, before any of its messages is routed.

The answers stay exact: a fact is used only where it settles the question; otherwise the rule
asks the database as before.

- Duplicates: a Message-ID neither known before the batch nor routed earlier in it cannot be
  a duplicate; any other is checked with the rule's own query. A copy that another router
  routes meanwhile is caught by the database (InboundMail's one-routing-per-Message-ID
  constraint): the later commit fails and its message is routed again, alone.
- Flood: the sender's count is read from the earliest window of the batch (an overcount) plus
  what the batch routed; only under the limit is the query skipped.
- Replies: a reference to a message routed earlier in the same batch is looked up again.
- Contacts: one made while routing a message counts for the next ones only once that
  message's savepoint is released. A message of the batch routed without these facts (too
  large to read ahead, or again after its transaction was rolled back) makes the batch
  forget them: its later messages ask the database (`forget`).

A message larger than `KEEP_BYTES` is not read ahead (its head would cost a second read of
the whole message); it is routed with the rules' own queries.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count
from django.db.models.functions import Lower
from django.utils import timezone

from mailroom.chatter.models import Message
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.lib import inbound
from mailroom.outgoing.models import OutgoingMail

KEEP_BYTES = 1024 * 1024  # messages up to this size are read once for the batch and kept
MAX_IDS = 30  # newest References first; older ones add little and cost queries
UNKNOWN = object()  # "not read ahead: ask the database"


def reply_ids(head: inbound.Head) -> list[str]:
    """The Message-IDs a message answers, In-Reply-To first, then the newest references."""
    return list(dict.fromkeys([*head.in_reply_to, *reversed(head.references)]))[:MAX_IDS]


def rows_answered(companies, ids) -> tuple[dict, dict]:
    """The chatter messages and sent mails (on a record) whose Message-ID is among `ids`, by
    (company, Message-ID): what a reply may answer. The thread rule's own query, too."""
    if not ids:
        return {}, {}
    messages = {(m.company_id, m.message_id): m for m in Message.objects.filter(
        company_id__in=companies, message_id__in=ids).only(
        "id", "company_id", "message_id", "content_type_id", "object_id")}
    mails = {(m.company_id, m.message_id): m for m in OutgoingMail.objects.filter(
        company_id__in=companies, message_id__in=ids, object_id__isnull=False)
        .select_related("chatter_message").only(
        "id", "company_id", "message_id", "content_type_id", "object_id",
        "chatter_message__id")}
    return messages, mails


class BatchFacts:
    def __init__(self, contexts: list, *, flood_minutes: int) -> None:
        self.covered: set[int] = set()
        heads = []
        for ctx in contexts:
            try:
                heads.append((ctx, ctx.head))
            except inbound.InboundError:
                continue  # the rules meet the error again and quarantine the message
            self.covered.add(id(ctx))
        companies = {ctx.mail.company_id for ctx, _ in heads}
        own_ids = {head.message_id for _, head in heads if head.message_id}
        senders = {ctx.sender for ctx, _ in heads if ctx.sender}
        answered = {i for _, head in heads for i in reply_ids(head)}
        self.known = self._known(companies, own_ids)
        self.sent = self._sent(companies, senders, [ctx for ctx, _ in heads], flood_minutes)
        self.messages, self.mails = rows_answered(companies, answered)
        self.records = self._records()
        self.partners = self._partners(companies, senders)
        self.routed_ids: set[tuple[int, str]] = set()  # Message-IDs routed in this batch
        self.routed_from: Counter = Counter()  # messages routed per sender in this batch
        self._pending: dict[tuple[int, str], Partner] = {}

    # --- reading ahead ---------------------------------------------------------------------

    @staticmethod
    def _known(companies, ids) -> set[tuple[int, str]]:
        if not ids:
            return set()
        known = set(InboundMail.objects.filter(
            company_id__in=companies, message_id__in=ids, state=InboundMail.State.DONE)
            .exclude(decision=InboundMail.Decision.REFUSED)
            .values_list("company_id", "message_id"))
        known |= set(Message.objects.filter(company_id__in=companies, message_id__in=ids)
                     .values_list("company_id", "message_id"))
        return known

    @staticmethod
    def _sent(companies, senders, contexts, minutes: int) -> Counter:
        if not senders:
            return Counter()
        earliest = min((ctx.mail.received_at or timezone.now()) for ctx in contexts)
        rows = (InboundMail.objects
                .filter(company_id__in=companies, from_address__in=senders,
                        received_at__gte=earliest - timedelta(minutes=minutes),
                        state=InboundMail.State.DONE)
                .values_list("company_id", "from_address").annotate(n=Count("id")))
        return Counter({(company, sender): n for company, sender, n in rows})

    def _records(self) -> dict[tuple[int, int], object]:
        wanted: dict[int, set[int]] = {}
        for row in (*self.messages.values(), *self.mails.values()):
            if row.content_type_id and row.object_id:
                wanted.setdefault(row.content_type_id, set()).add(row.object_id)
        records = {}
        for content_type_id, ids in wanted.items():
            try:
                model = ContentType.objects.get_for_id(content_type_id).model_class()
            except ContentType.DoesNotExist:
                model = None
            if model is None:
                continue
            for record in model._default_manager.filter(pk__in=ids):
                records[(content_type_id, record.pk)] = record
        return records

    @staticmethod
    def _partners(companies, senders) -> dict[tuple[int, str], Partner]:
        if not senders:
            return {}
        found: dict[tuple[int, str], Partner] = {}
        rows = (Partner.objects.annotate(address=Lower("email"))
                .filter(company_id__in=companies, address__in=senders).order_by("name", "pk"))
        for partner in rows:  # the rule's `.first()` takes the first by name
            found.setdefault((partner.company_id, partner.address), partner)
        return found

    # --- what the rules ask ----------------------------------------------------------------

    def covers(self, ctx) -> bool:
        return id(ctx) in self.covered

    def may_be_duplicate(self, ctx) -> bool:
        key = (ctx.mail.company_id, ctx.head.message_id)
        return key in self.known or key in self.routed_ids

    def may_flood(self, ctx, limit: int) -> bool:
        key = (ctx.mail.company_id, ctx.sender)
        return self.sent[key] + self.routed_from[key] >= limit

    def replied(self, ctx, ids: list[str]):
        """(messages, mails) by Message-ID for `ids`, or UNKNOWN when one of them was routed
        in this batch (its rows are newer than what was read ahead)."""
        company = ctx.mail.company_id
        if any((company, i) in self.routed_ids for i in ids):
            return UNKNOWN
        return ({i: self.messages[(company, i)] for i in ids if (company, i) in self.messages},
                {i: self.mails[(company, i)] for i in ids if (company, i) in self.mails})

    def record(self, content_type_id: int, object_id: int, company_id: int):
        record = self.records.get((content_type_id, object_id))
        if record is None or record.company_id != company_id:
            return UNKNOWN
        return record

    def partner(self, ctx):
        """The contact whose address is the sender's, None when there is none, or UNKNOWN."""
        key = (ctx.mail.company_id, ctx.sender)
        return self.partners.get(key)

    def made_partner(self, ctx, partner: Partner) -> None:
        self._pending[(ctx.mail.company_id, ctx.sender)] = partner

    def forget(self) -> None:
        """Cover no message any more: the batch's later messages ask the database. Called when
        one of its messages was routed with facts of its own (too large to read ahead, or
        again after its transaction was rolled back): what that one did, a contact made
        say, is not known here."""
        self.covered.clear()

    def routed(self, ctx, *, committed: bool) -> None:
        """After each message: what it changed counts for the batch's next messages."""
        if not self.covers(ctx):
            return
        company = ctx.mail.company_id
        if ctx.head.message_id:
            self.routed_ids.add((company, ctx.head.message_id))
        if ctx.sender:
            self.routed_from[(company, ctx.sender)] += 1
        if committed:
            self.partners.update(self._pending)
        self._pending.clear()
