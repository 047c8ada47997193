"""`mailroom apikey create|list|revoke`: per-user API keys from the console.

Keys are written by `core.services` (which audits them). The secret is printed once, alone
on stdout, so `KEY=$(mailroom apikey create --user bob)` works; explanations go to stderr.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from mailroom.core import services
from mailroom.core.models import ApiKey, User


def _user(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user


def _prefix(value: str) -> str:
    """Accept the bare prefix, `mr_<prefix>` or a whole key."""
    value = value.strip()
    if value.startswith(services.API_KEY_PREFIX):
        value = value[len(services.API_KEY_PREFIX):]
    return value.split("_", 1)[0]


class Command(BaseCommand):
    help = "Create, list and revoke per-user API keys."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a key; prints the secret once.")
        create.add_argument("--user", required=True, help="Username the key acts as.")
        create.add_argument("--name", default="", help="A label, e.g. the calling system.")
        listing = actions.add_parser("list", help="List keys (never their secrets).")
        listing.add_argument("--user", help="Only this user's keys.")
        revoke = actions.add_parser("revoke", help="Revoke a key by its prefix.")
        revoke.add_argument("prefix", help="The key's prefix (the part after mr_).")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, *, user: str, name: str, **options) -> None:
        owner = _user(user)
        if not owner.is_active:
            raise CommandError(f"User {user!r} is inactive.")
        if len(name) > ApiKey._meta.get_field("name").max_length:
            raise CommandError("The name is too long (100 characters at most).")
        key, secret = services.create_api_key(owner, actor=None, name=name)
        self.stderr.write(f"Created key {key.prefix} for {owner.username}. Store it now; it "
                          f"cannot be shown again:")
        self.stdout.write(secret)

    def _list(self, *, user: str | None = None, **options) -> None:
        keys = ApiKey.objects.select_related("user").order_by("user__username", "-created_at")
        if user:
            keys = keys.filter(user=_user(user))
        rows = [("PREFIX", "USER", "NAME", "CREATED", "LAST USED", "STATE")]
        for key in keys:
            rows.append((
                key.prefix,
                key.user.username,
                key.name or "-",
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                "active" if key.is_active else f"revoked {key.revoked_at:%Y-%m-%d}",
            ))
        if len(rows) == 1:
            self.stderr.write("No API keys.")
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    def _revoke(self, *, prefix: str, **options) -> None:
        key = ApiKey.objects.select_related("user").filter(prefix=_prefix(prefix)).first()
        if key is None:
            raise CommandError(f"No API key with prefix {prefix!r}.")
        if not key.is_active:
            self.stdout.write(f"Key {key.prefix} was already revoked.")
            return
        services.revoke_api_key(key, actor=None)
        self.stdout.write(f"Revoked key {key.prefix} of {key.user.username}.")
