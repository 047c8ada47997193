"""Turning an OutgoingMail row into the bytes and envelopes the sender hands to SMTP.

- MIME by `lib.mime.build_message` (fast hand assembly), once per mail and pass;
- headers: the fixed Message-ID, `Auto-Submitted: auto-generated` for automatic mails, and
  `X-Mailroom-ID` — our own signed id of the mail, so a reply or bounce can be tied to it
  even when a relay rewrites the Message-ID;
- the envelope sender is a VERP address per recipient on the sender's domain
  (`bounce+<signed mail and recipient ids>@domain`), so a bounce names what failed;
- a DKIM signature when the company has an active key for the sender's domain (`lib.dkim`,
  RSA through OpenSSL; keys are parsed once and reused).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from functools import lru_cache

import idna

from mailroom.core.blobs import read_blob
from mailroom.core.tokens import MAILROOM_ID_HEADER, bounce_key, mailroom_id
from mailroom.lib import mime, verp
from mailroom.lib.dkim import DkimSigner
from mailroom.outgoing.models import DkimKey, OutgoingAttachment, OutgoingMail, OutgoingRecipient


@lru_cache(maxsize=4096)
def parse_from(email_from: str) -> tuple[str, str]:
    """(display name, address) of a From value; cached, a batch repeats a few senders."""
    return parseaddr(email_from)


@lru_cache(maxsize=4096)
def parse_reply_to(value: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, a) for n, a in getaddresses([value]) if a) if value else ()


@lru_cache(maxsize=1024)
def ascii_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    if domain.isascii():
        return domain
    return idna.encode(domain, uts46=True).decode("ascii")


@dataclass(frozen=True, slots=True)
class Built:
    raw: bytes  # ASCII headers
    utf8_raw: bytes | None  # UTF-8 headers, for SMTPUTF8 servers (internationalised mail)
    envelopes: dict[int, str]  # recipient pk -> envelope sender (VERP)


class Composer:
    """Builds messages for one batch at a time (`load`, then `compose` per mail)."""

    def __init__(self) -> None:
        self.key = bounce_key()
        self._signers: dict[tuple, DkimSigner] = {}  # parsed keys, kept across batches
        self._keys: dict[tuple[int, str], DkimKey] = {}
        self._attachments: dict[int, list[OutgoingAttachment]] = {}
        self._blobs: dict[str, bytes] = {}

    def load(self, mails: Iterable[OutgoingMail], companies: Iterable[int]) -> None:
        """The batch's DKIM keys and attachment rows, in two queries."""
        mail_ids = [m.pk for m in mails]
        self._keys = {}
        for key in DkimKey.objects.filter(company_id__in=companies, active=True).order_by(
                "created_at", "pk"):
            self._keys[(key.company_id, key.domain.lower())] = key  # the newest wins
        self._attachments = defaultdict(list)
        for attachment in OutgoingAttachment.objects.filter(mail_id__in=mail_ids):
            self._attachments[attachment.mail_id].append(attachment)
        self._blobs = {}

    def signer(self, company_id: int, domain: str) -> DkimSigner | None:
        key = self._keys.get((company_id, domain))
        if key is None:
            return None
        cache_key = (key.pk, key.domain, key.selector, key.private_key)
        signer = self._signers.get(cache_key)
        if signer is None:
            signer = DkimSigner(ascii_domain(key.domain), key.selector, key.private_key)
            self._signers = {cache_key: signer, **{k: v for k, v in self._signers.items()
                                                   if k[0] != key.pk}}
        return signer

    def _blob(self, sha256: str) -> bytes:
        data = self._blobs.get(sha256)
        if data is None:
            data = self._blobs[sha256] = read_blob(sha256)
        return data

    def compose(self, mail: OutgoingMail, recipients: list[OutgoingRecipient],
                pending: list[OutgoingRecipient]) -> tuple[bytes, dict[int, str]]:
        """(the message bytes, {recipient pk: envelope sender}); see `build`."""
        built = self.build(mail, recipients, pending)
        return built.raw, built.envelopes

    def build(self, mail: OutgoingMail, recipients: list[OutgoingRecipient],
              pending: list[OutgoingRecipient]) -> Built:
        """The message and its envelope senders. Raises ValueError when the message cannot
        be encoded (lib.mime names the field).

        A message with an address whose local part is not ASCII is built twice: with UTF-8
        headers (RFC 6532) for servers that offer SMTPUTF8, and an ASCII copy where that
        address is written as an encoded group, for the others (the recipients with an ASCII
        address still get it; the transport fails the others alone)."""
        name, address = parse_from(mail.email_from)
        if "@" not in address:
            raise ValueError(f"The sender address {mail.email_from!r} is not valid.")
        domain = address.rpartition("@")[2].lower()
        headers = dict(mail.headers or {})
        if mail.is_automatic:
            headers.setdefault("Auto-Submitted", "auto-generated")
        headers[MAILROOM_ID_HEADER] = mailroom_id(mail.pk, self.key)
        arguments = dict(
            from_addr=(name, address) if name else address,
            to=[(r.name, r.address) for r in recipients if r.kind == OutgoingRecipient.Kind.TO],
            cc=[(r.name, r.address) for r in recipients if r.kind == OutgoingRecipient.Kind.CC],
            reply_to=list(parse_reply_to(mail.reply_to)) or None,
            subject=mail.subject, html=mail.body_html or None, text=mail.body_text or None,
            message_id=mail.message_id, date=mail.scheduled_at or mail.created_at,
            headers=headers,
            attachments=[mime.Attachment(a.name, a.mimetype, self._blob(a.sha256),
                                         a.content_id or None, inline=bool(a.content_id))
                         for a in self._attachments.get(mail.pk, ())],
        )
        utf8_raw = None
        try:
            raw = mime.build_message(**arguments)
        except mime.UnencodableAddress:
            utf8_raw = mime.build_message(**arguments, smtputf8=True)
            raw = mime.build_message(**arguments, downgrade=True)
        signer = self.signer(mail.company_id, domain)
        if signer is not None:
            raw = signer.sign(raw)
            utf8_raw = signer.sign(utf8_raw) if utf8_raw is not None else None
        envelope_domain = ascii_domain(domain)
        envelopes = {r.pk: verp.make_bounce_address(mail_id=mail.pk, recipient_id=r.pk,
                                                    domain=envelope_domain, key=self.key)
                     for r in pending}
        return Built(raw, utf8_raw, envelopes)
