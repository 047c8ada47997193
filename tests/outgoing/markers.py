"""Markers shared by the outgoing tests."""

import os

import pytest

IN_MEMORY_SQLITE = pytest.mark.skipif(
    (os.environ.get("MAILROOM_DATABASE_URL") or "sqlite").startswith("sqlite"),
    reason="the in-memory SQLite test database is one connection, so threads cannot share it; "
           "the SQLite pass covers this with real worker processes (test_crash, "
           "test_workers_pg); the PostgreSQL pass runs it")
