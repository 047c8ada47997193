"""The router (see `runner`): `context` holds what rules share, `rules/` one module per rule,
`runner` the order, the worker step's batches and leases, and the dry run.

`route`, `dry_run`, `route_pending` and the lease functions are re-exported for callers."""

from mailroom.incoming.router.context import Context, Destination, Outcome
from mailroom.incoming.router.runner import (
    RULES,
    claim,
    dry_run,
    renew,
    route,
    route_pending,
    run_rules,
)

__all__ = ["RULES", "Context", "Destination", "Outcome", "claim", "dry_run", "renew", "route",
           "route_pending", "run_rules"]
