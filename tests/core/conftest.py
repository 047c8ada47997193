"""Fixtures of the node-process tests (tests/core/nodes.py)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import premigrated
from tests.conftest import postgres_admin_url
from tests.core.nodes import node_env, run


@pytest.fixture(scope="module")
def node_template(tmp_path_factory):
    """A database `mailroom migrate` made with the installation's keys (PostgreSQL)."""
    import psycopg

    admin_url = postgres_admin_url()
    admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    # the run's migrated database (it knows no keys): the `migrate` below has nothing to
    # apply and records this installation's keys, as on a fresh database
    name, url = premigrated.postgres_database(admin, "mr_keys_tmpl")
    try:
        migrated = run(node_env(tmp_path_factory.mktemp("migrator"), "m", url),
                       "migrate", "--no-input", "-v", "0")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield admin, name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def node_database(node_template):
    """A fresh database for one test, cloned from `node_template` (its URL)."""
    admin, template_name = node_template
    name = f"mr_keys_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield urlunsplit(urlsplit(postgres_admin_url())._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
