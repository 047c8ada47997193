"""Command addresses: `<prefix>+<signed token>@<alias domain>` mail that asks Mailroom to do
one thing (e.g. `unsubscribe+<token>@…`, RFC 2369's mailto unsubscribe) instead of reaching
a record.

Routing (`services.resolve`) accepts such an address at RCPT time when its prefix is
registered here, and the incoming router's `command` rule runs the handler. The apps that own
the commands live on higher floors (campaigns), so they register their handler from
`AppConfig.ready()` with `register`; routing and incoming never import them.

A handler gets a `CommandMail` (plain data) and returns a `CommandResult`: `done` False means
the token named nothing of ours (tampered, foreign, deleted) and nothing was changed. It runs
inside the router's transaction; it must be idempotent (the same request may come twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandMail:
    company_id: int
    prefix: str  # the command, e.g. "unsubscribe"
    token: str  # what follows the "+", as received (base32 tokens are case-insensitive)
    address: str  # the recipient address, lowercase
    sender: str  # the message's From (or envelope sender), lowercase
    remote_ip: str | None = None


@dataclass(frozen=True)
class CommandResult:
    done: bool  # False: an invalid token, nothing changed
    reason: str  # plain words for the inbound log


Handler = Callable[[CommandMail], CommandResult]


@dataclass(frozen=True)
class Command:
    prefix: str
    handler: Handler
    description: str  # what it does, for the log: "an unsubscribe request"


_commands: dict[str, Command] = {}


def register(prefix: str, handler: Handler, *, description: str) -> None:
    """Make `<prefix>+<token>@<domain>` a command address (the last registration wins)."""
    prefix = prefix.strip().lower()
    if not prefix or not prefix.isascii() or any(c in prefix for c in "+@ \t\r\n"):
        raise ValueError(f"invalid command prefix {prefix!r}")
    _commands[prefix] = Command(prefix, handler, description)


def lookup(prefix: str) -> Command | None:
    return _commands.get((prefix or "").lower())
