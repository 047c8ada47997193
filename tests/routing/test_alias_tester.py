"""Testing an alias routes through the incoming router, which routing (a lower floor) never
imports: incoming registers its dry run in `routing.testing` when the app is ready."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailroom.incoming.router import dry_run
from mailroom.routing import testing


def test_incoming_registers_the_router_dry_run_as_the_alias_tester():
    assert testing.alias_tester() is dry_run


def test_without_a_registered_tester_the_error_names_the_missing_app(monkeypatch):
    monkeypatch.setattr(testing, "_tester", None)
    with pytest.raises(ImproperlyConfigured, match="'mailroom.incoming'"):
        testing.alias_tester()
