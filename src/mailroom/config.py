"""Configuration from the environment (and an optional `.env`), with generated secrets.

Kept apart from settings.py so the rules (defaults, key generation, file modes) are testable
without importing Django settings.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None, default: list[str]) -> list[str]:
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def read_or_create_secret(path: Path, make: callable) -> str:
    """Return the secret stored at `path`, creating it with mode 0600 on first start.

    O_EXCL makes two processes starting at once agree on one key: the loser reads the
    winner's file instead of overwriting it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_existing_secret(path)
    value = make()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file readable by its owner only (0600), and tighten one
    left more open by an older version. SQLite gives its -wal and -shm files the mode of the
    database file, so they follow; any that exist already are tightened too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except FileNotFoundError:
            continue


def _read_existing_secret(path: Path) -> str:
    """Another process may be writing the file right now: give it a moment."""
    import time

    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{path} exists but is empty; delete it to generate a new secret")


# the keys every node of one installation must share (core.keyring checks them on PostgreSQL)
KEY_VARIABLES = ("MAILROOM_SECRET_KEY", "MAILROOM_FERNET_KEYS")


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    base_url: str
    allowed_hosts: list[str]
    time_zone: str
    log_level: str
    debug: bool
    secret_key: str
    fernet_keys: list[str]
    # the key variables given in the environment (or `.env`), not generated in the data dir:
    # on PostgreSQL every node must give them (core.keyring)
    keys_from_environment: tuple[str, ...] = ()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load(env: dict[str, str] | None = None) -> Config:
    if env is None:
        try:
            from dotenv import load_dotenv

            load_dotenv(Path.cwd() / ".env", override=False)
        except ImportError:  # pragma: no cover - dotenv is a dependency
            pass
        env = dict(os.environ)
    data_dir = Path(env.get("MAILROOM_DATA_DIR") or Path.cwd() / "var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = env.get("MAILROOM_DATABASE_URL") or env.get("DATABASE_URL") or (
        f"sqlite:///{data_dir / 'mailroom.sqlite3'}"
    )
    secret_key = env.get("MAILROOM_SECRET_KEY") or read_or_create_secret(
        data_dir / "secret_key", lambda: secrets.token_urlsafe(50)
    )
    fernet = env.get("MAILROOM_FERNET_KEYS") or read_or_create_secret(
        data_dir / "fernet.key", lambda: Fernet.generate_key().decode()
    )
    base_url = (env.get("MAILROOM_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        base_url=base_url,
        allowed_hosts=_list(env.get("MAILROOM_ALLOWED_HOSTS"), ["127.0.0.1", "localhost", "[::1]"]),
        time_zone=env.get("MAILROOM_TIME_ZONE") or "UTC",
        log_level=(env.get("MAILROOM_LOG_LEVEL") or "INFO").upper(),
        debug=_bool(env.get("MAILROOM_DEBUG")),
        secret_key=secret_key,
        fernet_keys=_list(fernet, []),
        keys_from_environment=tuple(
            name for name in KEY_VARIABLES if (env.get(name) or "").strip()),
    )
