"""Who may write: the alias's contact policy and allowlist-only mode, on a sender identity
Mailroom verified itself (SPF/DKIM/DMARC) — a forged From of a follower is not that
follower."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from mailroom.chatter.models import Follower
from mailroom.contacts.models import Partner
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome
from mailroom.routing import services as routing
from mailroom.routing.models import Alias

NAME = "security"


def apply(ctx: Context) -> Outcome | None:
    destination = ctx.destination
    target = ctx.alias_target
    alias = destination.alias or (target.alias if target else None)
    domain = target.domain if target else (ctx.targets[0].domain if ctx.targets else None)
    sender = ctx.sender
    if (alias is not None and alias.allowlist_only) or (domain is not None and
                                                        domain.allowlist_only):
        where = alias.email if alias is not None and alias.allowlist_only else domain.name
        entry = routing.is_allowed(sender, routing.allowed_senders(
            ctx.mail.company_id, alias, domain)) if sender else None
        if entry is None:
            return _refuse(ctx, f"{where} accepts mail only from allowed senders; "
                                f"{sender or 'the sender'} is not one.")
        if not ctx.sender_verified:
            return _refuse(ctx, f"{sender} is an allowed sender, but this message did not "
                                f"prove it comes from them ({ctx.auth.summary()}).")
        ctx.note(NAME, f"Allowed sender {entry.pattern}, identity verified.")
    policy = alias.contact_policy if alias is not None else Alias.ContactPolicy.EVERYONE
    if destination.record is not None and destination.alias is None:
        policy = Alias.ContactPolicy.EVERYONE  # a reply to our own mail: the thread is known
    if policy == Alias.ContactPolicy.EVERYONE:
        ctx.note(NAME, "Everyone may write here.")
        return None
    if not sender:
        return _refuse(ctx, "The message has no sender address.")
    company = ctx.mail.company_id
    if policy == Alias.ContactPolicy.PARTNERS:
        known = Partner.objects.filter(company_id=company, email__iexact=sender).exists()
        who = "a known contact"
    elif policy == Alias.ContactPolicy.INTERNAL:
        known = get_user_model().objects.filter(email__iexact=sender, is_active=True,
                                                companies=company).exists()
        who = "an internal user"
    else:
        record = destination.record or alias.parent
        known = record is not None and Follower.objects.filter(
            company_id=company, content_type_id=_ct(record), object_id=record.pk,
            partner__email__iexact=sender).exists()
        who = "a follower of the record"
    if not known:
        return _refuse(ctx, f"Only {_policy_words(policy)} may write to {alias.email}; "
                            f"{sender} is not {who}.")
    if not ctx.sender_verified:
        return _refuse(ctx, f"{sender} is {who}, but the message did not prove it comes from "
                            f"them ({ctx.auth.summary()}): it may be forged.", reply=False)
    ctx.note(NAME, f"{sender} is {who}; identity verified ({ctx.auth.summary()}).")
    return None


def _ct(record) -> int:
    return ContentType.objects.get_for_model(record, for_concrete_model=True).pk


def _policy_words(policy: str) -> str:
    return {"partners": "known contacts", "followers": "followers of the record",
            "internal": "internal users"}.get(policy, policy)


def _refuse(ctx: Context, reason: str, reply: bool = True) -> Outcome:
    # never reply to a forged sender: that would mail a stranger (backscatter)
    forged = "auth" in ctx.__dict__ and ctx.auth.dmarc == "fail"
    return Outcome(InboundMail.Decision.REFUSED, reason,
                   refuse_with_reply=reply and not forged)
