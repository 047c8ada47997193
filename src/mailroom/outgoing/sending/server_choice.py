"""Which server sends a mail: the explicit server of the mail, else the active servers of the
mail's company and purpose whose from-filter allows the sender — exact address before domain
before "any sender", then by `sequence` — best first. Pure: reads the rows it is given."""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import parseaddr
from functools import lru_cache

from mailroom.outgoing.models import MailServer, OutgoingMail, Purpose


@lru_cache(maxsize=4096)
def sender_address(email_from: str) -> str:
    """The bare address of a From value ("Acme <billing@acme.example>" → billing@…)."""
    return parseaddr(email_from)[1].strip().lower() or email_from.strip().lower()


def filter_rank(server: MailServer, address: str) -> int | None:
    """0 = the address is listed, 1 = its domain is, 2 = the server takes any sender;
    None = the from-filter does not allow this sender."""
    entries = server.filter_entries()
    if not entries:
        return 2
    domain = address.rpartition("@")[2]
    rank = None
    for entry in entries:
        if "@" in entry and not entry.startswith("@"):
            if entry == address:
                return 0
        elif entry.lstrip("@") == domain:
            rank = 1
    return rank


def candidates(mail: OutgoingMail, servers: Iterable[MailServer]) -> list[MailServer]:
    """The servers that may send `mail`, best first. `servers`: the company's servers."""
    servers = list(servers)
    if mail.server_id:
        return [s for s in servers if s.pk == mail.server_id and s.active]
    address = sender_address(mail.email_from)
    ranked = []
    for server in servers:
        if not server.active or server.company_id != mail.company_id:
            continue
        if server.purpose not in (mail.purpose, Purpose.BOTH):
            continue
        rank = filter_rank(server, address)
        if rank is not None:
            ranked.append(((rank, server.sequence, server.pk), server))
    return [server for _, server in sorted(ranked, key=lambda pair: pair[0])]
