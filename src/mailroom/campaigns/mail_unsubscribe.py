"""Unsubscribe by email (RFC 2369's mailto List-Unsubscribe): a campaign mail offers
`<mailto:unsubscribe+<token>@<domain>?subject=unsubscribe>` next to its https one-click URL,
and a mail to that address unsubscribes its recipient exactly like the one-click POST.

- The token is the recipient's own signed UNSUBSCRIBE token (tokens.py): lowercase base32,
  read case-insensitively, so an MTA that changes the local part's case changes nothing, and
  short: two ids of up to 2^63 and the 80-bit MAC make 45 characters, so
  `unsubscribe+<token>` stays within RFC 5321's 64 (tests check the longest one).
- The domain is the sender's domain — the one outgoing/compose.py puts the VERP
  `bounce+…@` envelope on — and the mailto is offered only when the gateway accepts mail
  there for the campaign's company (routing.resolve says it is our command address): an
  address that bounces would be worse than none.
- Incoming mail reaches `handle` through routing.commands (registered by `register()` from
  CampaignsConfig.ready(); routing and incoming sit below campaigns and never import it).
  The router logs the reason and never answers or files the message.
"""

from __future__ import annotations

from mailroom.campaigns import preferences as prefs
from mailroom.outgoing.compose import ascii_domain
from mailroom.routing import commands
from mailroom.routing import services as routing

PREFIX = "unsubscribe"
SUBJECT = "unsubscribe"
INVALID = ("An unsubscribe request with an invalid token (cut, changed or not from one of "
           "our mails); nothing was changed.")
_PROBE = "aaaaaaaaaaaaaaaa"


def register() -> None:
    commands.register(PREFIX, handle, description="an unsubscribe request")


def mailto_domain(company_id: int, domain: str) -> str:
    """`domain` (ASCII) when mail to `unsubscribe+…@domain` reaches this company through the
    gateway, else "" (no mailto is offered)."""
    if not domain:
        return ""
    domain = ascii_domain(domain)
    target = routing.resolve(f"{PREFIX}+{_PROBE}@{domain}")
    if target is None or target.kind != "command" or target.company_id != company_id:
        return ""
    return domain


def mailto_url(token: str, domain: str) -> str:
    return f"mailto:{PREFIX}+{token}@{domain}?subject={SUBJECT}"


def handle(request: commands.CommandMail) -> commands.CommandResult:
    """Unsubscribe the recipient the token names, as the one-click POST does (idempotent);
    a token that names nothing of this company changes nothing."""
    trace = prefs.read_link(request.token)
    if trace is None or trace.campaign.company_id != request.company_id:
        return commands.CommandResult(False, INVALID)
    already = trace.unsubscribed_at is not None
    sender = request.sender or "an unknown sender"
    left = prefs.one_click(trace, ip=None, via=f"unsubscribe by email ({sender})")
    what = (f"An unsubscribe request by email from {sender} for {trace.email}, campaign "
            f"“{trace.campaign.name}”:")
    if left:
        lists = ", ".join(f"“{name}”" for name in left)
        return commands.CommandResult(True, f"{what} unsubscribed from {lists}.")
    if already:
        return commands.CommandResult(True, f"{what} already unsubscribed; nothing changed.")
    if not trace.campaign.lists.exists():
        return commands.CommandResult(True, f"{what} the address is on the suppression list.")
    return commands.CommandResult(True, f"{what} unsubscribed (no longer on the campaign's "
                                        f"lists).")
