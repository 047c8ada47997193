"""Node processes of one installation for the multi-node tests: each node its own data dir,
all of them one database and the same keys (core.keyring); `node_database` (tests/core/
conftest.py) is a fresh PostgreSQL database cloned from one `mailroom migrate` made."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from cryptography.fernet import Fernet

from tests.core.test_processes import REPO, mailroom, mailroom_env

SECRET = "the-installation-secret-key-" + secrets.token_urlsafe(32)
K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
TIMEOUT = 180  # a Django start-up is seconds; a busy CI machine makes it many


def node_env(tmp_path: Path, name: str, database_url: str, **keys: str | None) -> dict:
    """The environment of node `name`: its own data dir; keys given (None: not set)."""
    keys = {"MAILROOM_SECRET_KEY": SECRET, "MAILROOM_FERNET_KEYS": K1, **keys}
    env = mailroom_env(tmp_path / name, database_url)
    for variable, value in keys.items():
        if value is None:
            env.pop(variable, None)
        else:
            env[variable] = value
    return env


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(mailroom(*args), env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT)


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(mailroom(*args), env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out + err
