"""Routing's back-office tests use the incoming screens' fixtures (a domain)."""

from tests.incoming.ui.conftest import domain, globex_domain  # noqa: F401 - fixtures
