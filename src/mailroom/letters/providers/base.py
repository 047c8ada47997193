"""The provider interface: submit, cancel, status, price, webhook parsing.

Every call gets the Letter row; `submit` also gets the final PDF bytes and must honour
`letter.idempotency_key`: called twice with the same key (a worker crashed after the provider
accepted but before Mailroom wrote it down), the provider returns the letter it already has
instead of posting a second one.

Errors are `ProviderError(code, message, transient=…, credit=…, action=…)`: transient ones
are retried with backoff, credit ones pause the provider's queue, the rest put the letter in
error with the message and `action` (what to do) in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


class ProviderError(Exception):
    def __init__(self, code: str, message: str, *, transient: bool = False,
                 credit: bool = False, action: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.credit = credit
        self.action = action


@dataclass(frozen=True)
class SubmitResult:
    provider_id: str
    price: Decimal | None = None
    currency: str = ""
    state: str = "submitted"  # a Letter.State value
    message: str = ""


@dataclass(frozen=True)
class StatusEvent:
    state: str  # a Letter.State value
    message: str = ""
    external_id: str = ""
    tracking_number: str = ""
    payload: dict = field(default_factory=dict)


class Provider:
    kind = ""
    # states in which `cancel` still works
    cancellable_states: frozenset[str] = frozenset({"queued", "submitted"})

    def __init__(self, row):
        self.row = row

    def submit(self, letter, pdf: bytes) -> SubmitResult:
        raise NotImplementedError

    def cancel(self, letter) -> None:
        raise NotImplementedError

    def status(self, letter) -> list[StatusEvent]:
        return []

    def price(self, letter) -> tuple[Decimal | None, str]:
        """An estimate before sending: (amount or None when unknown, currency)."""
        return None, ""

    def test_connection(self) -> str:
        """Check the credentials and the way to the provider; a plain sentence on success,
        ProviderError otherwise."""
        return "Nothing to check."

    def parse_webhook(self, request) -> list[tuple[str, StatusEvent]]:
        """[(provider letter id, event)] from a verified webhook request."""
        return []


PROVIDERS: dict[str, type[Provider]] = {}


def register_provider(cls: type[Provider]) -> type[Provider]:
    PROVIDERS[cls.kind] = cls
    return cls
