"""Signed per-recipient tokens for the links a campaign mail carries: unsubscribe (one-click
and the preference centre), the open pixel and click redirects.

A token names a CampaignRecipient (its id, plus the company's id so a token cannot be moved
to another tenant) and is signed with the house key for one purpose, so an unsubscribe token
never opens a tracking URL and no id can be guessed or counted through. Tokens are short
base32 (they sit in every link of every mail) and never expire: an unsubscribe link must
keep working years later (RFC 8058 asks for it to work for as long as the mail may be read).
"""

from __future__ import annotations

from mailroom.core.tokens import bounce_key
from mailroom.lib import verp

UNSUBSCRIBE = b"mailroom-campaign-unsubscribe\0"
TRACK = b"mailroom-campaign-track\0"
CONFIRM = b"mailroom-subscription-confirm\0"  # names a Subscription, not a recipient


def make(purpose: bytes, company_id: int, recipient_id: int) -> str:
    return verp.sign_numbers(purpose, [company_id, recipient_id], bounce_key())


def read(purpose: bytes, token: str) -> tuple[int, int] | None:
    """(company id, recipient id) if the token is ours for `purpose`, else None."""
    numbers = verp.unsign_numbers(purpose, token or "", bounce_key())
    if not numbers or len(numbers) != 2:
        return None
    return numbers[0], numbers[1]
