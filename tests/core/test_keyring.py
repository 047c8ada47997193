"""One set of keys for the whole installation (core.keyring).

The rules run in this process on whichever database the suite uses; the start check of real
node processes (separate data dirs, one fresh PostgreSQL database per test, cloned from one
migrated template) runs in tests/core/test_keyring_nodes.py.
"""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from mailroom.core import keyring, secrets
from mailroom.core.models import AuditLog, KeyFingerprint

SECRET = "one-installation-secret-key-" + "x" * 30
K1, K2, K3 = (Fernet.generate_key().decode() for _ in range(3))
TOKEN = b"t" * 32
BOTH = ("MAILROOM_SECRET_KEY", "MAILROOM_FERNET_KEYS")
_SQLITE_PASS = (os.environ.get("MAILROOM_DATABASE_URL") or "sqlite").startswith("sqlite")
# like tests/outgoing/markers.py: which pass of scripts/test runs a test
ON_POSTGRESQL = pytest.mark.skipif(_SQLITE_PASS, reason="PostgreSQL: nodes share the database")
ON_SQLITE = pytest.mark.skipif(not _SQLITE_PASS, reason="the single-machine SQLite default")


def start(*fernet: str, secret: str = SECRET, token: bytes = TOKEN, given=BOTH,
          reset: bool = False) -> keyring.Assessment:
    return keyring.check_keys(secret_key=secret, fernet_keys=list(fernet), token_key=token,
                              given=given, require_environment=True, reset=reset)


@pytest.fixture
def fresh(db):
    """No fingerprints yet (a PostgreSQL test database migrated with keys in the environment
    recorded some at migrate)."""
    KeyFingerprint.objects.all().delete()


def recorded(kind: str) -> set[str]:
    return set(KeyFingerprint.objects.filter(kind=kind).values_list("fingerprint", flat=True))


def fp(key: str) -> str:
    return keyring.fingerprint("fernet", base64.urlsafe_b64decode(key))


def primary() -> str:
    return KeyFingerprint.objects.filter(kind="fernet", primary_at__isnull=False) \
        .latest("primary_at").fingerprint


def test_the_first_start_records_fingerprints_never_the_keys(fresh):
    result = start(K1)
    assert result.problems == [] and result.warnings == []
    rows = list(KeyFingerprint.objects.values_list("kind", "fingerprint"))
    assert sorted(kind for kind, _ in rows) == ["fernet", "secret", "token"]
    stored = " ".join(value for _, value in rows)
    raw_fernet = base64.urlsafe_b64decode(K1)
    for secret in (SECRET, K1, raw_fernet.hex(), TOKEN.decode(), TOKEN.hex()):
        assert secret not in stored
    # one key, different labels: the fingerprints do not even match across kinds
    assert keyring.fingerprint("secret", b"k" * 32) != keyring.fingerprint("token", b"k" * 32)
    assert primary() == fp(K1)


def test_the_same_keys_start_again(fresh):
    start(K1)
    assert start(K1).problems == []
    assert len(recorded("fernet")) == 1


def test_a_missing_variable_is_named_before_anything_is_read(fresh):
    for given, missing in ((("MAILROOM_FERNET_KEYS",), "MAILROOM_SECRET_KEY is not set"),
                           (("MAILROOM_SECRET_KEY",), "MAILROOM_FERNET_KEYS is not set"),
                           ((), "MAILROOM_SECRET_KEY and MAILROOM_FERNET_KEYS are not set")):
        with pytest.raises(keyring.KeyringError, match=missing):
            start(K1, given=given)
    assert not KeyFingerprint.objects.exists()


def test_another_secret_key_is_refused_and_nothing_is_recorded(fresh):
    start(K1)
    with pytest.raises(keyring.KeyringError, match="MAILROOM_SECRET_KEY differs"):
        start(K1, secret="another-secret-key-" + "y" * 40, token=b"u" * 32)
    assert len(recorded("secret")) == 1


def test_another_token_key_is_refused(fresh):
    start(K1)
    with pytest.raises(keyring.KeyringError, match="token-signing key"):
        start(K1, token=b"u" * 32)


def test_fernet_keys_sharing_none_with_the_installation_are_refused(fresh):
    start(K1)
    with pytest.raises(keyring.KeyringError, match="None of the keys in MAILROOM_FERNET_KEYS"):
        start(K2, K3)
    assert recorded("fernet") == {fp(K1)}


def test_a_rotation_is_accepted_with_a_warning_when_the_primary_moves(fresh):
    start(K1)
    # step 1: the new key second on every node: no warning, the key is recorded
    assert start(K1, K2).warnings == []
    assert recorded("fernet") == {fp(K1), fp(K2)} and primary() == fp(K1)
    # step 2: the new key first: the first node to start so warns, the next ones do not
    moved = start(K2, K1)
    assert len(moved.warnings) == 1 and "primary Fernet key" in moved.warnings[0]
    assert primary() == fp(K2)
    assert start(K2, K1).warnings == []
    # a node left behind (old key first) still starts, and says so
    behind = start(K1)
    assert behind.problems == [] and len(behind.warnings) == 1
    # the old key alone is still an accepted key until --reset retires it
    start(K2, reset=True)
    assert recorded("fernet") == {fp(K2)}
    with pytest.raises(keyring.KeyringError, match="None of the keys"):
        start(K1)
    # each change to the installation's keys is in the audit log (a fingerprint's start)
    actions = list(AuditLog.objects.filter(action__startswith="keys.")
                   .order_by("id").values_list("action", "after"))
    assert actions == [("keys.fernet_added", {"fingerprints": [fp(K2)[:12]]}),
                       ("keys.fernet_primary", {"primary": fp(K2)[:12]}),
                       ("keys.fernet_primary", {"primary": fp(K1)[:12]}),
                       ("keys.reset", {})]


def test_the_system_check_reports_without_recording(fresh, settings):
    if connection.vendor != "postgresql":  # one machine: nothing to report
        assert keyring.key_checks(databases=["default"]) == []
        return
    from mailroom.core.tokens import bounce_key

    settings.FERNET_KEYS = [K2]
    start(K1, secret=settings.SECRET_KEY, token=bounce_key())
    settings.CONFIG = type(settings.CONFIG)(**{**settings.CONFIG.__dict__,
                                               "keys_from_environment": BOTH})
    issues = keyring.key_checks(databases=["default"])
    assert [issue.id for issue in issues] == ["core.W900"]
    assert "None of the keys" in issues[0].msg
    assert recorded("fernet") == {fp(K1)}


def test_a_malformed_fernet_key_is_named_by_position(fresh):
    with pytest.raises(keyring.KeyringError, match="key 2 is not a Fernet key"):
        start(K1, "not-a-key")


@ON_SQLITE
def test_on_sqlite_the_start_check_accepts_data_dir_keys(db, settings):
    settings.CONFIG = type(settings.CONFIG)(**{**settings.CONFIG.__dict__,
                                               "keys_from_environment": ()})
    assert keyring.require_installation_keys() is None
    assert not KeyFingerprint.objects.exists()


@ON_POSTGRESQL
def test_on_postgresql_the_start_check_refuses_data_dir_keys(fresh, settings):
    settings.CONFIG = type(settings.CONFIG)(**{**settings.CONFIG.__dict__,
                                               "keys_from_environment": ("MAILROOM_FERNET_KEYS",)})
    with pytest.raises(keyring.KeyringError, match="MAILROOM_SECRET_KEY is not set"):
        keyring.require_installation_keys()
    settings.CONFIG = type(settings.CONFIG)(**{**settings.CONFIG.__dict__,
                                               "keys_from_environment": BOTH})
    assert keyring.require_installation_keys().problems == []
    assert recorded("secret")


def test_config_says_which_keys_came_from_the_environment(tmp_path):
    from mailroom import config

    generated = config.load({"MAILROOM_DATA_DIR": str(tmp_path)})
    assert generated.keys_from_environment == ()
    given = config.load({"MAILROOM_DATA_DIR": str(tmp_path), "MAILROOM_SECRET_KEY": SECRET,
                         "MAILROOM_FERNET_KEYS": f"{K2},{K1}"})
    assert given.keys_from_environment == BOTH
    assert given.fernet_keys == [K2, K1] and given.secret_key == SECRET


@pytest.fixture
def fernet_keys(settings):
    def use(*keys: str) -> None:
        settings.FERNET_KEYS = list(keys)
        secrets._fernet.cache_clear()

    yield use
    secrets._fernet.cache_clear()


def test_reencrypt_lets_the_old_key_be_dropped(acme, fernet_keys):
    from mailroom.outgoing.models import DkimKey

    fernet_keys(K1)
    key = DkimKey.objects.create(company=acme, domain="acme.test", private_key="PEM-1",
                                 dns_txt="v=DKIM1")
    fernet_keys(K2, K1)
    counts = keyring.reencrypt_secrets()
    assert counts["outgoing.DkimKey.private_key"] == 1
    fernet_keys(K2)
    assert DkimKey.objects.get(pk=key.pk).private_key == "PEM-1"
    raw = DkimKey.objects.filter(pk=key.pk).values_list("private_key", flat=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM outgoing_dkimkey WHERE id = %s", [key.pk])
        (ciphertext,) = cursor.fetchone()
    assert Fernet(K2.encode()).decrypt(ciphertext.encode()) == b"PEM-1"
    assert list(raw) == ["PEM-1"]

