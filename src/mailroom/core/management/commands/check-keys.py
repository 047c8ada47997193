"""`mailroom check-keys`: the start check of every serving process, on its own (core.keyring).

Exits 1 with the reason when this node's keys are not the installation's (PostgreSQL only);
records them when the database knows none yet. `--reset` makes this node's keys the
installation's; `--reencrypt` re-encrypts every stored secret with the primary Fernet key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from mailroom.core import keyring


class Command(BaseCommand):
    help = ("Check that this node's MAILROOM_SECRET_KEY and MAILROOM_FERNET_KEYS are the "
            "installation's (PostgreSQL), as web, worker and gateway do when they start.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true",
                            help="Forget the recorded key fingerprints and record this node's "
                                 "(after changing keys on purpose on every node, or to retire "
                                 "old Fernet keys).")
        parser.add_argument("--reencrypt", action="store_true",
                            help="Re-encrypt every stored secret with the primary (first) "
                                 "Fernet key, so older keys can be dropped.")

    def handle(self, *args, reset: bool, reencrypt: bool, **options) -> None:
        try:
            result = keyring.require_installation_keys(reset=reset)
        except keyring.KeyringError as exc:
            raise CommandError(str(exc), returncode=1) from None
        if result is None:
            self.stdout.write(f"{connection.vendor}: one machine, keys from the data dir or "
                              "the environment are accepted.")
        else:
            for warning in result.warnings:
                self.stderr.write(f"Warning: {warning}")
            self.stdout.write("Keys: this node's keys are the installation's.")
        if reencrypt:
            counts = keyring.reencrypt_secrets()
            for label, count in counts.items():
                self.stdout.write(f"Re-encrypted {count} {label}")
