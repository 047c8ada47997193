"""Who tests an alias: the router's dry run, registered here by the floor above.

Testing an alias ("Test: route a sample message") routes a made-up message through the
incoming router and rolls it back. The router lives in `incoming`, a higher floor than
routing, so routing never imports it: `IncomingConfig.ready()` registers its dry run with
`register_alias_tester`, and `services.run_alias_test` calls `alias_tester()`.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


class AliasTester(Protocol):
    """Route a made-up message from `sender` to `recipient` in `company` and roll it back.

    The result has a `trace`: one dict per rule that spoke (`rule`, `decision`, `note`), the
    deciding rule last."""

    def __call__(self, *, company: Any, sender: str, recipient: str, subject: str) -> Any: ...


_tester: AliasTester | None = None


def register_alias_tester(tester: AliasTester) -> None:
    """Called once by the app that owns the router (the last registration wins)."""
    global _tester
    _tester = tester


def alias_tester() -> AliasTester:
    if _tester is None:
        raise ImproperlyConfigured(
            "No alias tester is registered: aliases are tested by the incoming router, "
            "which registers itself when the 'mailroom.incoming' app is installed.")
    return _tester
