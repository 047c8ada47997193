"""What a delivery report says, independent of how it was read (no Django).

One :class:`FailedRecipient` per failed or delayed recipient, gathered in a
:class:`BounceReport` that gives one plain sentence for the UI; :func:`classify` decides hard,
soft or delayed from the enhanced status code, the SMTP reply and its wording. The parsers in
:mod:`mailroom.lib.bounces` build these; callers import them from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BounceReport", "FailedRecipient", "classify"]

STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
SMTP_CODE = re.compile(r"(?<![\d.])([245])\d\d(?=[ -]|$)")
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|quota|insufficient (?:system )?storage|storage allocation"
    r"|temporar(?:y|ily)|try (?:again )?later|greylist|rate limit|too many (?:connections|"
    r"messages|recipients)|unusual rate", re.IGNORECASE)

_WORDS = {  # enhanced status (subject.detail) → plain words, RFC 3463
    "1.1": "the mailbox does not exist", "1.10": "the mailbox does not exist",
    "1.2": "the domain does not exist or takes no mail", "1.3": "the address is not valid",
    "1.6": "the mailbox has moved", "2.1": "the mailbox is disabled", "2.2": "the mailbox is full",
    "2.3": "the message is too large", "3.4": "the message is too large",
    "4.1": "the receiving server did not answer", "4.2": "the connection was dropped",
    "4.4": "no mail server was found for the domain",
    "4.7": "delivery took too long and was given up",
    "7.1": "delivery was refused by policy (often a spam filter)"}
_CLASS_WORDS = {"5": "the message was refused", "4": "delivery failed for now",
                "2": "the message was delivered"}


@dataclass(frozen=True)
class FailedRecipient:
    address: str      # lowercased original (else final) recipient, '' if unknown
    status: str       # enhanced status code like '5.1.1', '' if none
    action: str       # 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded'
    diagnostic: str   # the remote server's words, one line, <= 500 chars
    kind: str         # 'hard' | 'soft' | 'delayed'


@dataclass(frozen=True)
class BounceReport:
    reporter: str     # 'dsn', 'postfix', 'exim', 'exchange', 'gmail', 'qmail', 'unknown'
    recipients: tuple[FailedRecipient, ...]
    original_message_id: str   # '<id@host>' of the mail that bounced, '' if not found
    original_mailroom_id: str  # X-Mailroom-ID of the returned original, '' if absent

    @property
    def kind(self) -> str:
        kinds = {r.kind for r in self.recipients}
        return "hard" if "hard" in kinds else "soft" if "soft" in kinds else "delayed"

    def reason(self) -> str:
        """One plain sentence for the UI about the worst recipient."""
        if not self.recipients:
            return "A delivery report arrived, but it names no failed recipient."
        first = next(r for r in self.recipients if r.kind == self.kind)
        words = _WORDS.get(first.status.partition(".")[2]) if first.status else None
        words = words or _CLASS_WORDS.get(first.status[:1], "delivery failed")
        code = f" ({first.status})" if first.status else ""
        who = f" for {first.address}" if first.address else ""
        if first.kind == "delayed":
            text = f"Delivery{who} is delayed and still being retried: {words}{code}"
        else:
            text = f"The receiving server says {words}{code}{who}"
        if first.diagnostic:
            text += f": {first.diagnostic}"
        others = len(self.recipients) - 1
        if others:
            text += f" (and {others} more recipient{'s' if others > 1 else ''})"
        return text if text.endswith((".", "!", "?")) else text + "."


def classify(status: str, diagnostic: str = "", action: str = "failed") -> str:
    """'hard', 'soft' or 'delayed': full mailboxes and 'try later' wording are soft."""
    action = (action or "").strip().lower()
    if action == "delayed":
        return "delayed"
    found = STATUS.search(status or "")
    code = found.group(0) if found else ""
    klass = code[:1]
    diagnostic = (diagnostic or "")[:2000]
    if not klass or klass == "2":
        smtp = SMTP_CODE.search(diagnostic)
        klass = smtp.group(1) if smtp else ""
    if klass == "4":
        return "soft"
    if code == "5.2.2" or _SOFT_WORDS.search(diagnostic):
        return "soft"
    return "hard"
