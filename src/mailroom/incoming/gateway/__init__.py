"""The inbound SMTP and LMTP gateway: refuse early, store, and only then say 250.

aiosmtpd speaks the protocol on one asyncio loop; everything that touches the database
(`routing.services.resolve` at RCPT, `incoming.services.accept` after DATA) runs in a small,
long-lived thread pool so a slow query never stalls the other sessions. The pool's threads
keep their database connections and drop them when they go stale or break.

What a client is told, and when:
- RCPT: an address that is not ours → 550 5.1.1 at once (no backscatter later); a database
  error → 451 4.3.0 (the sending MTA retries).
- MAIL ... SIZE= over the limit → 552; DATA over the limit → 552 5.3.4 (aiosmtpd counts while
  it reads and keeps nothing past the limit).
- DATA with a bare LF or bare CR → 550 5.5.2: different servers end DATA at different
  sequences, which is how SMTP smuggling injects a second message (CVE-2023-51766 and kin).
  aiosmtpd ≥ 1.4.5 itself only ends DATA at <CRLF>.<CRLF> (CVE-2024-27305).
- After DATA, recipients are grouped by company: one InboundMail row per company, stored
  (blob fsynced, row committed) before the 250. Over SMTP the groups commit together or not
  at all (451 4.3.0), so a retry never duplicates; over LMTP each recipient gets its own reply.

Measured (2-core shared VM, 4 KB messages, 8 client connections from another process):
~420-450 messages/s stored on SQLite, ~400 on PostgreSQL. The process is CPU-bound at about
1.9 ms CPU a message (aiosmtpd reads DATA line by line in Python; the ORM insert), not
waiting on fsync or locks: more database threads do not help, more processes would.
"""

from mailroom.incoming.gateway.from_settings import (
    default_db_threads,
    gateway_from_settings,
    tls_context,
)
from mailroom.incoming.gateway.in_process import RunningGateway, start_gateway
from mailroom.incoming.gateway.listeners import (
    Gateway,
    Listen,
    ListenError,
    describe,
    parse_listen,
    serve,
)
from mailroom.incoming.gateway.sessions import Handler, has_bare_cr_or_lf

__all__ = ["Gateway", "Handler", "Listen", "ListenError", "RunningGateway",
           "default_db_threads", "describe", "gateway_from_settings", "has_bare_cr_or_lf",
           "parse_listen", "serve", "start_gateway", "tls_context"]
