"""Benchmarks (`./scripts/bench NAME`).

The processes a bench starts are nodes of one installation: on PostgreSQL they must share
their keys (core.keyring refuses a node without them), so a run gives them one fresh set
unless the environment already does (each bench makes its own database).
"""

import base64
import os
import secrets

os.environ.setdefault("MAILROOM_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("MAILROOM_FERNET_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
