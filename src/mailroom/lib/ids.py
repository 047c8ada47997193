"""Identifiers (no Django)."""

from __future__ import annotations

import secrets
import time


def make_message_id(domain: str) -> str:
    """An RFC 5322 Message-ID that is unique without coordination between workers."""
    return f"<{int(time.time() * 1000):x}.{secrets.token_hex(8)}@{domain or 'mailroom.invalid'}>"
