"""Posting: the sender becomes (or is found as) a contact, the body is sanitized, inline
images and attachments are stored (dangerous types flagged, and zip archives holding them by
the names in their directory — never opened or unpacked), and
the message lands on the record — new or existing — whose followers are notified.

A sender whose identity Mailroom could not verify is not attributed to an existing contact
(that would let anyone post as a customer); the message shows the address as unverified.
"""

from __future__ import annotations

import io
import re

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.urls import reverse

from mailroom.chatter import services as chatter
from mailroom.chatter.models import Attachment, Message
from mailroom.contacts.models import Partner
from mailroom.contacts.services import save_partner
from mailroom.core import contention
from mailroom.core import record_types as registry
from mailroom.core.automatic import AUTOMATIC_MAIL_FLAG, suppressed
from mailroom.core.prepared import Prepared
from mailroom.incoming import new_records
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Outcome, limits
from mailroom.lib import inbound
from mailroom.lib.addresses import InvalidAddress, format_mailbox, normalize_email

NAME = "post"


def apply(ctx: Context) -> Outcome:
    destination = ctx.destination
    body = ctx.body
    partner, author_name = _author(ctx)
    if ctx.dry:
        what = (f"post on {destination.record}" if destination.record is not None
                else f"create a {registry.get(destination.record_type).label}")
        return Outcome(InboundMail.Decision.POSTED if destination.record is not None
                       else InboundMail.Decision.CREATED, f"Would {what} ({destination.how}).",
                       record=destination.record)
    created = destination.record is None
    with _quiet(ctx):
        record = destination.record or _create(ctx, body, partner, author_name)
        message = _post(ctx, record, body, partner, author_name)
        if created and partner is not None:
            chatter.follow_all(record, [partner], actor=None)
    what = "Created" if created else "Posted on"
    unknown = (f" from an unknown sender: the From line names no address "
               f"(“{ctx.head.from_empty_group}”)" if ctx.head.from_empty_group else "")
    return Outcome(InboundMail.Decision.CREATED if created else InboundMail.Decision.POSTED,
                   f"{what} {record._meta.verbose_name} “{record}” ({destination.how})"
                   f"{unknown}.", record=record, message=message)


class _quiet:
    """Automatic mail is never answered: nothing saved while posting it triggers automated
    emails (automation.suppressed)."""

    def __init__(self, ctx: Context) -> None:
        self.block = suppressed() if ctx.automatic else None

    def __enter__(self):
        if self.block is not None:
            self.block.__enter__()

    def __exit__(self, *exc):
        if self.block is not None:
            return self.block.__exit__(*exc)
        return False


def _author(ctx: Context) -> tuple[Partner | None, str]:
    head = ctx.head
    sender, name = ctx.sender, head.from_name
    if not sender:
        return None, name or ("Unknown sender (no address in From)"
                              if head.from_empty_group else "Unknown sender")
    company = ctx.mail.company
    facts = ctx.read_ahead()
    if facts is not None:
        existing = facts.partner(ctx)
    else:
        existing = _contact(company, sender)
    if existing is None and not ctx.dry:
        # what was read (ahead, for the batch) is older than another router's transaction
        # that may have made this contact since: ask again, holding the address so that two
        # routers making it at once take turns (SQLite's one writer does that already)
        contention.hold(f"contact {company.pk} {sender.lower()}")
        existing = _contact(company, sender)
    if existing is not None:
        if ctx.sender_verified:
            return existing, existing.name
        return None, f"{name or sender} <{sender}> (sender not verified)"
    if ctx.dry:
        return None, name or sender
    try:
        # the message's own company; the new record's one system message names the contact
        partner = save_partner(Partner(company=company, email=normalize_email(sender),
                                       name=name or sender.split("@")[0]), actor=None,
                               trusted=("company",), log_creation=False)
        ctx.new_contact = partner
        if facts is not None:
            facts.made_partner(ctx, partner)
        return partner, name or sender
    except (InvalidAddress, ValidationError) as exc:  # an address we cannot store
        ctx.note(NAME, f"The sender address cannot be a contact: {exc}")
        return None, f"{name or sender} <{sender}>"


# the contact of an address (the first by name, as the read-ahead takes it): compiled once,
# asked for every message from a sender not known yet
_CONTACT = Prepared(lambda company, address: Partner.objects.annotate(address=Lower("email"))
                    .filter(company_id=company, address=address).order_by("name", "pk")
                    .values_list("pk")[:1])


def _contact(company, sender: str) -> Partner | None:
    found = _CONTACT.rows(company.pk, sender.lower())
    return Partner.objects.get(pk=found[0][0]) if found else None


def _create(ctx: Context, body: inbound.Body, partner, author_name: str):
    destination = ctx.destination
    record_type = registry.get(destination.record_type)
    record = new_records.build(record_type.model, company=ctx.mail.company,
                               defaults=destination.defaults, subject=ctx.head.subject,
                               partner=partner, sender=ctx.sender,
                               sender_name=ctx.head.from_name, text=body.text[:10000])
    if ctx.automatic:
        setattr(record, AUTOMATIC_MAIL_FLAG, True)
    # the company is the message's and the contact was found or made just now
    new_contact = " (a new contact)" if ctx.new_contact is not None else ""
    return chatter.save_record(record, actor=None, trusted=("company", "partner"),
                               created_message=f"Created from an email by {author_name}"
                                               f"{new_contact}.")


def _post(ctx: Context, record, body: inbound.Body, partner, author_name: str) -> Message:
    head = ctx.head
    server = ctx.mail.server
    keep_files = server is None or server.keep_attachments
    # One limit holds for received mail: what the gateway or a fetcher accepted (at most
    # MAILROOM_INBOUND_MAX_BYTES) is storable, so a part — or the original — is never refused
    # here for the smaller upload limit (see the gateway package docstring for why).
    room = limits().max_bytes
    stored, by_cid, dropped = [], {}, 0
    for part in body.attachments:
        if not keep_files and not part.content_id:
            dropped += 1
            continue
        attachment = chatter.store_attachment(record, actor=None, name=part.filename,
                                              stream=io.BytesIO(part.data),
                                              mimetype=part.content_type, max_bytes=room)
        if part.dangerous:
            Attachment.objects.filter(pk=attachment.pk).update(is_dangerous=True,
                                                               danger=part.danger[:300])
            ctx.note(NAME, f"Attachment flagged dangerous: {part.danger}.")
        stored.append(attachment)
        if part.content_id:
            by_cid[part.content_id.lower()] = attachment
    if server is not None and server.keep_original:
        stored.append(chatter.store_attachment(
            record, actor=None, name="original.eml", stream=io.BytesIO(ctx.raw),
            mimetype="message/rfc822", max_bytes=room))
    html = _inline_images(body.html, by_cid) if body.html else ""
    cut = head.cut_fields()
    if cut:
        ctx.note(NAME, "Cut to fit, ending in “…”: " + ", ".join(
            f"{field} ({length:,} characters, kept {_kept(field):,})"
            for field, length in cut.items()) + ".")
    if dropped:
        ctx.note(NAME, f"{dropped} attachment(s) not kept (the server strips attachments).")
    return chatter.post_message(
        record, actor=None, body_html=html, body_text="" if html else body.text,
        subject=head.subject, message_type=Message.Type.EMAIL,
        direction=Message.Direction.INCOMING, author_partner=partner, author_name=author_name,
        email_from=_from_line(head, ctx.sender), message_id=head.message_id or None,
        in_reply_to=_ids_within(head.in_reply_to, 998), references=" ".join(head.references),
        parent=ctx.destination.parent_message, attachments=stored, date=head.date,
        notify=not ctx.automatic)  # automatic mail (auto-replies, bounces) tells nobody


def _kept(field: str) -> int:
    return inbound.MAX_SUBJECT if field == "Subject" else inbound.MAX_NAME


def _ids_within(ids: list[str], limit: int) -> str:
    """Whole message ids, space-separated, as many as fit in `limit` characters."""
    out = ""
    for message_id in ids:
        joined = f"{out} {message_id}" if out else message_id
        if len(joined) > limit:
            break
        out = joined
    return out


_CID = re.compile(r"""(["'])cid:([^"']+)\1""", re.I)


def _inline_images(html: str, by_cid: dict) -> str:
    """cid: references point at the stored attachment, so inline images keep working."""
    def swap(match: re.Match) -> str:
        attachment = by_cid.get(match.group(2).strip("<>").lower())
        if attachment is None:
            return match.group(0)
        url = reverse("chatter:download", args=[attachment.pk]) + "?inline=1"
        return f"{match.group(1)}{url}{match.group(1)}"

    return _CID.sub(swap, html)


def _from_line(head: inbound.Head, sender: str) -> str:
    """The author as "Name <address>"; the address may be UTF-8 (it came over SMTPUTF8)."""
    return format_mailbox(head.from_name, sender)[:320]

