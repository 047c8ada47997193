"""The SMTP envelope of one message: addresses as they go on the wire, and who cannot be sent.

Internationalised mail (RFC 6530-6533), the way the transport sends it:

- a domain always travels as its IDNA A-label (`user@xn--exmple-cua.com`): every server
  understands it, so an address whose only non-ASCII part is the domain needs nothing special;
- a non-ASCII local part (`üser@example.com`) needs SMTPUTF8 (RFC 6531). Offered: the
  transaction says `MAIL FROM:<…> SMTPUTF8` and the message goes with UTF-8 headers
  (RFC 6532). Not offered: that recipient alone fails, in plain words, and the others of the
  message go out with the ASCII (downgraded) headers.

Pure: no sockets, no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailroom.lib.addresses import InvalidAddress, envelope_address
from mailroom.outgoing.models import FailureType
from mailroom.outgoing.smtp.smtp_errors import RecipientResult

NO_SMTPUTF8 = ("The receiving server does not accept internationalised addresses (no SMTPUTF8), "
               "so {address} cannot be reached through it.")


@dataclass
class Envelope:
    sender: str  # MAIL FROM, on the wire
    rcpts: list[str] = field(default_factory=list)  # RCPT TO, on the wire, for `sendable`
    sendable: list[int] = field(default_factory=list)  # indexes into the caller's rcpts
    refused: dict[int, RecipientResult] = field(default_factory=dict)  # index -> result
    smtputf8: bool = False  # the envelope itself needs SMTPUTF8

    def merge(self, addresses: Sequence[str],
              sent: Sequence[RecipientResult]) -> list[RecipientResult]:
        """One result per caller recipient, in the caller's order."""
        results = dict(self.refused)
        results.update(zip(self.sendable, sent, strict=True))
        return [results[index] for index in range(len(addresses))]


def refused(address: str, reason: str, failure_type: str = FailureType.REJECTED
            ) -> RecipientResult:
    return RecipientResult(address, False, failure_type=failure_type, reason=reason)


def build_envelope(envelope_from: str, rcpts: Sequence[str], *, smtputf8_offered: bool
                   ) -> Envelope:
    """Encode the envelope for a server that does (or does not) offer SMTPUTF8.

    Raises ValueError for a line break, NUL or angle bracket in any address (they are
    validated at enqueue; this is the last guard against command injection)."""
    if any(c in a for a in (envelope_from, *rcpts) for c in "\r\n<>\0"):
        raise ValueError("An envelope address holds a line break or angle bracket.")
    try:
        sender, sender_utf8 = envelope_address(envelope_from) if envelope_from else ("", False)
    except InvalidAddress:
        sender, sender_utf8 = envelope_from, not envelope_from.isascii()
    envelope = Envelope(sender, smtputf8=sender_utf8)
    for index, address in enumerate(rcpts):
        try:
            wire, needs_utf8 = envelope_address(address)
        except InvalidAddress as exc:
            envelope.refused[index] = refused(address, f"{address} cannot be sent to: {exc}",
                                              FailureType.INVALID_RECIPIENT)
            continue
        if needs_utf8 and not smtputf8_offered:
            envelope.refused[index] = refused(address, NO_SMTPUTF8.format(address=address))
            continue
        envelope.smtputf8 |= needs_utf8
        envelope.rcpts.append(wire)
        envelope.sendable.append(index)
    if sender_utf8 and not smtputf8_offered:
        reason = (f"The receiving server does not accept internationalised addresses (no "
                  f"SMTPUTF8), so the sender address {envelope_from} cannot be used with it.")
        for index in envelope.sendable:
            envelope.refused[index] = refused(rcpts[index], reason)
        envelope.rcpts, envelope.sendable = [], []
    return envelope
