"""Routing's back-office tests use the incoming screens' fixtures (a signed-in client, a domain)."""

from tests.incoming.ui.conftest import client_for, domain, globex_domain  # noqa: F401 - fixtures
