"""`mailroom deliver`: take one message on stdin, for an MTA's pipe transport.

Postfix, for instance (one recipient per call keeps each recipient's outcome its own):

    mailroom  unix  -  n  n  -  -  pipe
      flags=R user=mailroom argv=/opt/mailroom/bin/mailroom deliver --sender ${sender}
      --recipient ${recipient}
    # main.cf: mailroom_destination_recipient_limit = 1

The exit status is what the MTA acts on (sysexits.h): 0 stored, 67 unknown recipient (bounce),
65 empty or too large (bounce), 75 try again later (the database or disk failed). One line on
stderr says why; the MTA quotes it in its bounce or log.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from mailroom.incoming import services
from mailroom.incoming.gateway.database import store
from mailroom.routing.services import resolve

EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = ("Store one message read on stdin for the given recipients (an MTA pipe). "
            "Exit status: 0 stored, 65 empty/too large, 67 unknown recipient, 75 try later.")
    stealth_options = ("stdin",)
    # An MTA runs this once per message: no system checks. Besides their cost, Django's
    # probe of SQLite's JSON support opens a write transaction, which on a busy SQLite file
    # waited behind the router's lock (the spool below never does).
    requires_system_checks: list = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--recipient", action="append", required=True, metavar="ADDR",
                            help="Envelope recipient (repeat for several).")
        parser.add_argument("--sender", default=None, metavar="ADDR",
                            help="Envelope sender; an empty value is the null sender "
                                 "(a bounce). Leave it out when there is no envelope.")

    def handle(self, *args, recipient: list[str], sender: str | None, **options) -> None:
        stream = options.get("stdin") or sys.stdin.buffer
        limit = services.max_message_bytes()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            while stream.read(1024 * 1024):  # drain, so the MTA is not cut off mid-write
                pass
            self._exit(EX_DATAERR, f"message too large: the limit is {limit:,} bytes")
        if not raw.strip():
            self._exit(EX_DATAERR, "empty message on stdin")
        groups: dict[int, tuple[object, list[str]]] = {}
        try:
            for address in recipient:
                target = resolve(address)
                if target is None:
                    self._exit(EX_NOUSER, f"<{address}>: no such address here")
                groups.setdefault(target.company_id, (target.domain, []))[1].append(address)
            # as the gateway stores: all companies' copies or none (a retry never doubles),
            # and on a SQLite file in the intake spool, never waiting on a router's lock
            ids = store(raw, list(groups.values()), source="deliver", together=True,
                        envelope_from="<>" if sender == "" else (sender or ""),
                        remote_ip=None, helo="")
        except services.TooLarge as exc:
            self._exit(EX_DATAERR, str(exc))
        except Exception as exc:  # the database or the disk: the MTA keeps it and retries
            import logging

            logging.getLogger("mailroom.incoming").debug("deliver failed", exc_info=True)
            self._exit(EX_TEMPFAIL, f"could not store the message, try again later "
                                    f"({type(exc).__name__}: {str(exc)[:200]})")
        if options.get("verbosity", 1) > 1:
            self.stdout.write(f"stored as {', '.join(f'#{i}' for i in ids)}")

    def _exit(self, code: int, message: str) -> None:
        self.stderr.write(f"mailroom deliver: {message}")
        raise SystemExit(code)
