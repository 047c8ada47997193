"""One set of keys for the whole installation: a node on PostgreSQL starts only with its keys.

Three keys must be the same on every node that shares a database:

- the **secret key** (`MAILROOM_SECRET_KEY`): Django's SECRET_KEY — sessions, password resets,
  digest, tip and unsubscribe links;
- the **token-signing key** (core.tokens.bounce_key, derived from `MAILROOM_SECRET_KEY`):
  bounce (VERP) addresses, reply tokens and `X-Mailroom-ID` — a bounce to an address made by
  one node must verify on another;
- the **Fernet keys** (`MAILROOM_FERNET_KEYS`, comma-separated, newest first): secrets at rest
  (core.secrets) — a server password saved through one node is decrypted by another.

Without them in the environment (or `.env`) each node generates its own in its data dir. That
is right for the single-machine SQLite default and wrong everywhere else, so on PostgreSQL
`refuse_to_start_without_keys()` runs at the start of every serving process (`mailroom web`,
`worker`, `gateway`, `run`, `check-keys`) and the process exits with a message naming the
variables when:

1. a variable is not given in the environment (data-dir keys are not accepted), or
2. its keys differ from the installation's.

The installation's keys are known by **fingerprints** in core.KeyFingerprint, recorded by
`mailroom migrate` or the first node to start: HMAC-SHA256 keyed with the key over a fixed
label per kind. The table never holds a key; a fingerprint can only confirm a guess of the
whole key, and the keys are 256-bit random values (README: how to generate them).

The rule per kind:

- **secret** and **token**: one fingerprint each; a node with another key is refused.
- **fernet** (rotation keeps working across nodes): every Fernet key ever accepted is
  recorded. A node is refused only when *none* of its keys is recorded — it could decrypt
  nothing stored, and nothing it stores could be decrypted by the others. Keys a node brings
  beside a recorded one are recorded (a rotation's new key). The installation's *primary* is
  the key a node last started with first in its list (`primary_at`); a node whose primary is
  another is accepted with a warning (logged, and system check core.W901) and its primary
  becomes the recorded one — expected once per rotation, a sign of a node left behind
  otherwise. Rotation: add the new key second on every node, then first on every node, run
  `mailroom check-keys --reencrypt` once, then drop the old key and `--reset` once.
- `mailroom check-keys --reset` forgets every fingerprint and records this node's: after
  changing the secret key on purpose on every node, or to retire Fernet keys no node holds.

A WSGI server loading mailroom.wsgi is refused the same way (the module raises
ImproperlyConfigured with the message). Not checked: the SQLite default (one machine, one
data dir).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Warning as CheckWarning
from django.core.checks import register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction
from django.utils.timezone import now

from mailroom.config import KEY_VARIABLES
from mailroom.core.services import audit

log = logging.getLogger("mailroom.keys")

SECRET, TOKEN, FERNET = "secret", "token", "fernet"
_LABELS = {SECRET: b"mailroom installation key fingerprint v1: secret key",
           TOKEN: b"mailroom installation key fingerprint v1: token-signing key",
           FERNET: b"mailroom installation key fingerprint v1: fernet key"}
_LOCK_ID = 0x6D6B6579  # pg_advisory_xact_lock: two nodes starting at once record one set
README_HINT = "see the README, \"PostgreSQL and several workers\""


class KeyringError(ImproperlyConfigured):
    """This node's keys are not the installation's: it must not start."""


@dataclass(frozen=True)
class NodeKeys:
    """Fingerprints of one node's keys (the Fernet ones in the node's order, primary first)."""

    secret: str
    token: str
    fernet: tuple[str, ...]


@dataclass
class Assessment:
    problems: list[str] = field(default_factory=list)  # the node is refused
    warnings: list[str] = field(default_factory=list)  # accepted, but someone should look
    new_fernet: list[str] = field(default_factory=list)  # fingerprints to record
    record_secret: bool = False
    record_token: bool = False
    primary_changed: bool = False


def fingerprint(kind: str, key: bytes) -> str:
    return hmac.new(key, _LABELS[kind], hashlib.sha256).hexdigest()


def node_keys(secret_key: str, fernet_keys: Sequence[str], token_key: bytes) -> NodeKeys:
    """Fingerprint this node's keys; a malformed Fernet key is refused by position."""
    fernet = []
    for position, key in enumerate(fernet_keys, start=1):
        try:
            Fernet(key.encode())
            raw = base64.urlsafe_b64decode(key.encode())
        except (ValueError, binascii.Error):
            raise KeyringError(
                f"MAILROOM_FERNET_KEYS: key {position} is not a Fernet key (32 url-safe "
                f"base64 bytes; {README_HINT} for how to generate one).") from None
        fernet.append(fingerprint(FERNET, raw))
    if not fernet:
        raise KeyringError(f"MAILROOM_FERNET_KEYS lists no key ({README_HINT}).")
    return NodeKeys(secret=fingerprint(SECRET, secret_key.encode()),
                    token=fingerprint(TOKEN, token_key), fernet=tuple(dict.fromkeys(fernet)))


def missing_variables(given: Iterable[str]) -> list[str]:
    given = set(given)
    return [name for name in KEY_VARIABLES if name not in given]


def missing_message(missing: Sequence[str]) -> str:
    return (f"{' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set in the environment. On "
            f"PostgreSQL every node of the installation must be given the same "
            f"{', '.join(KEY_VARIABLES)}; keys generated in a data dir are only for the "
            f"single-machine SQLite default ({README_HINT}).")


def assess(node: NodeKeys, recorded: Iterable) -> Assessment:
    """Compare a node's fingerprints with the recorded KeyFingerprint rows (no writes)."""
    rows = list(recorded)
    result = Assessment()
    by_kind: dict[str, list] = {SECRET: [], TOKEN: [], FERNET: []}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    secrets = {row.fingerprint for row in by_kind[SECRET]}
    if not secrets:
        result.record_secret = True
    elif node.secret not in secrets:
        result.problems.append(
            "MAILROOM_SECRET_KEY differs from the installation's: give this node the same "
            "value as the other nodes (changed on purpose on every node? then run "
            "`mailroom check-keys --reset` once).")
    tokens = {row.fingerprint for row in by_kind[TOKEN]}
    if not tokens:
        result.record_token = True
    elif node.token not in tokens and not result.problems:  # a new secret key says it all
        result.problems.append(
            "The token-signing key (derived from MAILROOM_SECRET_KEY) differs from the "
            "installation's: bounce and reply addresses made by other nodes would not "
            "verify here. Give this node the same MAILROOM_SECRET_KEY as the others.")
    fernets = {row.fingerprint: row for row in by_kind[FERNET]}
    foreign = bool(fernets) and not fernets.keys() & set(node.fernet)
    if foreign:
        result.problems.append(
            "None of the keys in MAILROOM_FERNET_KEYS is one of the installation's Fernet "
            "keys: this node could not read the stored secrets (server passwords, tokens) "
            "and the other nodes could not read what it stores. Give it the same "
            "MAILROOM_FERNET_KEYS as the other nodes (during a rotation: the new key first, "
            "the old one second).")
    result.new_fernet = [fp for fp in node.fernet if fp not in fernets]
    primaries = [row for row in fernets.values() if row.primary_at is not None]
    last_primary = max(primaries, key=lambda row: row.primary_at).fingerprint \
        if primaries else None
    if last_primary != node.fernet[0]:
        result.primary_changed = True
        if last_primary is not None and not foreign:
            result.warnings.append(
                "This node's primary Fernet key (the first in MAILROOM_FERNET_KEYS) is not "
                "the installation's last recorded primary (the first key of the node that "
                "started before). Expected once per step while rotating keys; otherwise give "
                "every node the same MAILROOM_FERNET_KEYS in the same order, or nodes without "
                "this key cannot read the secrets this node stores.")
    return result


def check_keys(*, secret_key: str, fernet_keys: Sequence[str], token_key: bytes,
               given: Iterable[str], require_environment: bool, reset: bool = False,
               using: str = "default") -> Assessment:
    """Refuse (KeyringError) or accept this node's keys, recording what a first start or a
    rotation adds. `require_environment`: data-dir keys are refused (PostgreSQL)."""
    from mailroom.core.models import KeyFingerprint

    if require_environment and (missing := missing_variables(given)):
        raise KeyringError("Refusing to start: " + missing_message(missing))
    node = node_keys(secret_key, fernet_keys, token_key)
    try:
        with transaction.atomic(using=using):
            if connections[using].vendor == "postgresql":
                with connections[using].cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
            rows = KeyFingerprint.objects.using(using)
            if reset:
                forgotten = rows.count()
                rows.all().delete()
                log.warning("keys: forgot %d recorded fingerprint(s); this node's keys are "
                            "the installation's now", forgotten)
                audit("keys.reset", actor=None, before={"fingerprints": forgotten})
            result = assess(node, rows.all())
            if result.problems:
                raise KeyringError("Refusing to start: " + " ".join(result.problems))
            _record(rows, node, result)
    except DatabaseError as exc:
        raise KeyringError(f"Cannot read the installation's key fingerprints ({exc}); has "
                           f"`mailroom migrate` run on this database?") from exc
    for warning in result.warnings:
        log.warning("keys: %s", warning)
    return result


def _record(rows, node: NodeKeys, result: Assessment) -> None:
    from mailroom.core.models import KeyFingerprint

    at = now()
    new = []
    if result.record_secret:
        new.append(KeyFingerprint(kind=SECRET, fingerprint=node.secret, recorded_at=at))
    if result.record_token:
        new.append(KeyFingerprint(kind=TOKEN, fingerprint=node.token, recorded_at=at))
    new += [KeyFingerprint(kind=FERNET, fingerprint=fp, recorded_at=at)
            for fp in result.new_fernet]
    rows.bulk_create(new)
    if result.new_fernet and not result.record_secret:  # not the first start: a rotation
        log.info("keys: recorded %d new Fernet key(s) as the installation's",
                 len(result.new_fernet))
        audit("keys.fernet_added", actor=None,
              after={"fingerprints": [fp[:12] for fp in result.new_fernet]})
    rows.filter(kind__in=[SECRET, TOKEN],
                fingerprint__in=[node.secret, node.token]).update(last_seen_at=at)
    rows.filter(kind=FERNET, fingerprint__in=node.fernet).update(last_seen_at=at)
    if result.primary_changed:
        rows.filter(kind=FERNET, fingerprint=node.fernet[0]).update(primary_at=at)
        if result.warnings:  # not the first start
            audit("keys.fernet_primary", actor=None, after={"primary": node.fernet[0][:12]})


def _this_node(**overrides):
    from mailroom.core.tokens import bounce_key

    config = getattr(settings, "CONFIG", None)
    values = dict(secret_key=settings.SECRET_KEY, fernet_keys=list(settings.FERNET_KEYS),
                  token_key=bounce_key(),
                  given=getattr(config, "keys_from_environment", ()))
    values.update(overrides)
    return values


def require_installation_keys(*, using: str = "default", reset: bool = False) -> Assessment | None:
    """The start check of a serving process: None on SQLite (nothing to share), else the
    assessment; raises KeyringError when this node must not start."""
    if connections[using].vendor != "postgresql":
        return None
    return check_keys(**_this_node(), require_environment=True, reset=reset, using=using)


def refuse_to_start_without_keys() -> None:
    """Call first in a serving command: a CommandError (exit 1, the message) when refused."""
    from django.core.management.base import CommandError

    try:
        require_installation_keys()
    except KeyringError as exc:
        raise CommandError(str(exc), returncode=1) from None


def record_at_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate: a fresh PostgreSQL database learns the installation's keys from the node
    that migrates it. Never fails a migration: a node that cannot record says why."""
    if connections[using].vendor != "postgresql":
        return
    if missing_variables(_this_node()["given"]):
        return  # migrate's system check (core.W900) says so; a test database's flush too
    try:
        require_installation_keys(using=using)
    except KeyringError as exc:
        log.warning("keys: not recorded at migrate: %s", exc)


@register("database")
def key_checks(app_configs=None, databases=None, **kwargs) -> list:
    """`mailroom check --database default`: the start check's findings, without recording."""
    from mailroom.core.models import KeyFingerprint

    issues = []
    for using in databases or ():
        if connections[using].vendor != "postgresql":
            continue
        values = _this_node()
        missing = missing_variables(values.pop("given"))
        if missing:
            issues.append(CheckWarning("Web, worker and gateway will refuse to start: "
                                       + missing_message(missing), id="core.W900"))
            continue
        table = KeyFingerprint._meta.db_table
        if table not in connections[using].introspection.table_names():
            continue  # not migrated yet: `mailroom migrate` records the keys
        try:
            result = assess(node_keys(**values), KeyFingerprint.objects.using(using).all())
        except (KeyringError, DatabaseError) as exc:
            issues.append(CheckWarning(str(exc), id="core.W900"))
            continue
        issues += [CheckWarning("Web, worker and gateway will refuse to start: " + problem,
                                id="core.W900") for problem in result.problems]
        issues += [CheckWarning(warning, id="core.W901") for warning in result.warnings]
    return issues


def reencrypt_secrets() -> dict[str, int]:
    """Re-encrypt every stored secret (each EncryptedTextField, whichever app declares it)
    with the primary Fernet key, so the older keys can be dropped. Returns counts by field."""
    from django.apps import apps

    from mailroom.core.secrets import EncryptedTextField

    counts: dict[str, int] = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields
                 if isinstance(f, EncryptedTextField)]
        if not names:
            continue
        manager = model._base_manager
        with transaction.atomic():
            for obj in manager.select_for_update().only("pk", *names).iterator():
                values = {name: getattr(obj, name) for name in names if getattr(obj, name)}
                if values:
                    manager.filter(pk=obj.pk).update(**values)  # encrypted anew on the way in
                    for name in values:
                        key = f"{model._meta.label}.{name}"
                        counts[key] = counts.get(key, 0) + 1
    return counts
