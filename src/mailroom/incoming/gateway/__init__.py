"""The inbound SMTP and LMTP gateway: refuse early, store, and only then say 250.

aiosmtpd speaks the protocol on one asyncio loop; everything that touches the database
(`routing.services.resolve` at RCPT, `incoming.services.accept` after DATA) runs in a small,
long-lived thread pool so a slow query never stalls the other sessions. The pool's threads
keep their database connections and drop them when they go stale or break.

What a client is told, and when:
- Connect: over MAILROOM_GATEWAY_MAX_CONNECTIONS in all, or _PER_IP from one address → 421
  4.7.0 and the connection closed (a greeting, not a silent drop: the sender retries later).
- MAIL after MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION messages → 421 4.7.0 "please
  reconnect"; nothing sent for MAILROOM_GATEWAY_IDLE_TIMEOUT seconds (between commands or in
  the middle of DATA) → 421 4.4.2 and closed. The time we spend storing is not idle time.
- RCPT: an address that is not ours → 550 5.1.1 at once (no backscatter later); a database
  error → 451 4.3.0 (the sending MTA retries).
- MAIL ... SIZE= over the limit → 552; DATA over the limit → 552 5.3.4 (aiosmtpd counts while
  it reads and keeps nothing past the limit). The limit advertised in EHLO is
  MAILROOM_INBOUND_MAX_BYTES less 1 KB kept for our Received line (received.py).
- DATA with a bare LF or bare CR → 550 5.5.2: different servers end DATA at different
  sequences, which is how SMTP smuggling injects a second message (CVE-2023-51766 and kin).
  aiosmtpd ≥ 1.4.5 itself only ends DATA at <CRLF>.<CRLF> (CVE-2024-27305).
- After DATA, recipients are grouped by company: one InboundMail row per company, stored
  (blob fsynced, row committed) before the 250. Over SMTP the groups commit together or not
  at all (451 4.3.0), so a retry never duplicates; over LMTP each recipient gets its own reply.
  What is stored starts with a Received line (RFC 5321 4.4: from, by, with ESMTP/ESMTPS/LMTP,
  the TLS version and cipher, the recipient of a one-recipient message, the date).

One size limit, MAILROOM_INBOUND_MAX_BYTES, and everything under it is routable. A message
between the 25 MB upload limit (MAX_ATTACHMENT_BYTES) and the inbound limit used to be
accepted here with 250 and then quarantined by the router, whose attachment store refused the
part. Of the two ways to make one limit hold we keep the door at the inbound limit and let the
router store a received part (or the original) up to that same limit, rather than refusing at
the door at 25 MB, because:
- a part decoded from a message is never larger than the message, so the inbound limit is a
  sufficient bound for every part — one number, checked once, at the door;
- a 25 MB file mailed by Gmail or Outlook arrives as ~34 MB of base64: a door at 25 MB
  would refuse exactly the large files people send, which big providers accept (up to 50 MB);
- messages already quarantined for this reason route when reprocessed (their bytes are
  stored; only the router's limit was wrong), where a lower door could never take them back;
- fetched mail follows the same rule with nothing new to build: over the inbound limit it
  stays on the server, named in the mailbox's error (fetchers/base.py), under it it routes.
The 25 MB limit still holds for what users upload and send.

Measured (2-core shared VM, 4 KB messages, 8 client connections from another process):
~420-450 messages/s stored on SQLite, ~400 on PostgreSQL. The process is CPU-bound at about
1.9 ms CPU a message (aiosmtpd reads DATA line by line in Python; the ORM insert), not
waiting on fsync or locks: more database threads do not help, more processes would.
Since then each acknowledged message costs two more fsyncs, for a power loss and not only a
crash: its blob's directory entry, and on SQLite the spool's WAL (synchronous=FULL). They
overlap in four database threads on SQLite too (the spool's inserts are short): see the
closing note of issue 16 for the figures measured with them.
"""

from mailroom.incoming.gateway.from_settings import (
    default_db_threads,
    gateway_from_settings,
    limits_from_settings,
    tls_context,
)
from mailroom.incoming.gateway.in_process import RunningGateway, start_gateway
from mailroom.incoming.gateway.listeners import (
    Gateway,
    Limits,
    Listen,
    ListenError,
    describe,
    parse_listen,
    serve,
)
from mailroom.incoming.gateway.sessions import Handler, has_bare_cr_or_lf

__all__ = ["Gateway", "Handler", "Limits", "Listen", "ListenError", "RunningGateway",
           "default_db_threads", "describe", "gateway_from_settings", "has_bare_cr_or_lf",
           "limits_from_settings", "parse_listen", "serve", "start_gateway", "tls_context"]
