from cryptography.fernet import Fernet

from mailroom.core import secrets


def test_roundtrip_and_ciphertext_differs(settings):
    token = secrets.encrypt("hunter2")
    assert "hunter2" not in token
    assert secrets.decrypt(token) == "hunter2"


def test_key_rotation_reads_old_tokens(settings):
    old_token = secrets.encrypt("s3cret")
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    secrets._fernet.cache_clear()
    try:
        assert secrets.decrypt(old_token) == "s3cret"
    finally:
        settings.FERNET_KEYS = settings.FERNET_KEYS[1:]
        secrets._fernet.cache_clear()


def test_undecryptable_secret_has_a_clear_error(settings):
    import pytest

    other = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with pytest.raises(ValueError, match="cannot be decrypted"):
        secrets.decrypt(other)
