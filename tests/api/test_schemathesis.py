"""Property-based fuzzing of every API operation from its own OpenAPI schema, as an
authenticated Administrator: whatever a client sends, the answer is never a 5xx, and every
answer conforms to the published document — a documented status code, the documented
content type and a body valid against the documented schema. Small, derandomized budget so
it stays fast."""

import contextlib
import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.support import Api, create_via_api, spec, type_ids

# A quick budget for every run; MAILROOM_FUZZ_EXAMPLES=200 for a deeper hunt.
EXAMPLES_PER_OPERATION = int(os.environ.get("MAILROOM_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@contextlib.contextmanager
def connection_kept():
    """What Django's test client does around each request: without it the WSGI handler
    closes the connection after the request (inside the test transaction it looks
    unusable), and on PostgreSQL the test's transaction would be gone."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db):
    """An administrator (so deletes run too; no password, hashing one is slow) and one row
    of every type, so generated ids sometimes hit real rows."""
    from django.contrib.auth.models import Group

    from mailroom.core.models import Company, User

    company = Company.objects.create(name="Fuzz Inc")
    admin = User.objects.create(username="fuzz", first_name="Fuzz", current_company=company)
    admin.companies.add(company)
    admin.groups.add(Group.objects.get(name="Administrator"))
    api = Api(admin)
    rows = {spec(key).slug: create_via_api(api, key, company)["id"] for key in type_ids()}
    return api, rows


def _load_schema():
    # Loaded at collection (serving the schema touches no database). Not through
    # `schemathesis.pytest.from_fixture`: 4.32.5's lazy loader writes `node._nodeid`,
    # which pytest 9 no longer has.
    # the WSGI application as mailroom.wsgi makes it, without that module's process-wide
    # setting (every SQLite commit with a WAL fsync: core.durability), which would hold for
    # every test this process runs after collection
    from django.core.wsgi import get_wsgi_application

    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    # The coverage phase enumerates every enum value and boundary (thousands of calls, the
    # time zones alone ~600); examples + fuzzing with positive and negative data is the
    # budget that fits here.
    loaded.config.phases.coverage.enabled = False
    return loaded


schema = _load_schema()
_SLUG = re.compile(r"^/api/v1/([^/]+)/\{id\}")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_conform_to_the_schema(case, seeded):
    api, rows = seeded
    match = _SLUG.match(case.path)
    if match and case.path_parameters and isinstance(case.path_parameters.get("id"), int):
        if case.path_parameters["id"] % 2 == 0:  # half the time, a row that exists
            case.path_parameters["id"] = rows.get(match.group(1), case.path_parameters["id"])
    with connection_kept():
        case.call_and_validate(headers=api.headers, checks=CHECKS)
