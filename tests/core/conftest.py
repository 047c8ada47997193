"""Fixtures of the node-process tests (tests/core/nodes.py)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import postgres_admin_url
from tests.core.nodes import node_env, run


@pytest.fixture(scope="module")
def node_template(tmp_path_factory):
    """A database `mailroom migrate` made with the installation's keys (PostgreSQL)."""
    import psycopg

    admin_url = postgres_admin_url()
    admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    name = f"mr_keys_tmpl_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
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
