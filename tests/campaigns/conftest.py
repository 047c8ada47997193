"""Campaigns fixtures: acme's newsletter list, a Mail Manager of globex, and a helper that
writes a CSV file as people export it from a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest

from mailroom.campaigns import services
from mailroom.campaigns.models import MailingList
from tests.browser import conftest as browser_fixtures
from tests.conftest import make_user

# the browser package's fixtures, once for this package: one chromium (and one Playwright
# event loop) per worker process, however many browser test modules live here
browser = browser_fixtures.browser
open_page = browser_fixtures.open_page
shot = browser_fixtures.shot


@pytest.fixture
def newsletter(acme, mia):
    return services.save_list(MailingList(company=acme, name="Newsletter"), actor=mia)


@pytest.fixture
def gina(globex):
    return make_user("gina", [globex], "Mail Manager")


@pytest.fixture
def globex_list(globex, gina):
    return services.save_list(MailingList(company=globex, name="Globex news"), actor=gina)


def csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode("utf-8")
