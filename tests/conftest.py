"""Shared fixtures: two companies and named users (Healthchecks style).

- acme: alice (Administrator), bob (User), mia (Mail Manager), tess (Template Editor)
- globex: charlie (User)
- dana belongs to both companies (User), currently in acme
"""

from __future__ import annotations

import functools
import os

import pytest

PASSWORD = "correct-horse-battery"

# `mailroom worker` runs at niceness 10 by default, to yield to the web and the gateway. Beside
# the suite's other parallel work (browsers, servers, a second xdist worker) that starved a
# test's workers (a 4,000-mail campaign did not get far in 240 s), so the workers a test starts
# run at normal priority; the test of the default sets it back to "" (the default).
os.environ["MAILROOM_WORKER_NICE"] = "0"


def postgres_admin_url() -> str:
    return os.environ.get("MAILROOM_TEST_POSTGRES_URL",
                          "postgres://postgres@127.0.0.1:5432/postgres")


@functools.cache
def postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(postgres_admin_url(), connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


# Tests that start their own PostgreSQL databases. Off CI they are skipped where no PostgreSQL
# answers; with CI=true they always run, so a missing PostgreSQL fails the run.
NEEDS_POSTGRES = pytest.mark.skipif(
    os.environ.get("CI") != "true" and not postgres_reachable(),
    reason="PostgreSQL is not reachable at MAILROOM_TEST_POSTGRES_URL (CI=true requires it)")


def pytest_configure(config):
    _serialise_live_server_on_sqlite()
    config.addinivalue_line("markers", "nodb: touches no database (marked at collection)")
    config.addinivalue_line(
        "markers", "fuzz: throws hostile input at every view; scripts/test runs it on "
                   "PostgreSQL, which refuses more than SQLite (on SQLite where none runs)")


DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences",
               "django_db_serialized_rollback", "live_server"}


def pytest_collection_modifyitems(config, items):
    """Mark the tests that cannot reach a database (pytest-django refuses them one): the
    PostgreSQL pass of scripts/test skips them, since they would only run the same Python
    twice. A test with a skipif (some run on one database only) is never marked."""
    for item in items:
        if item.get_closest_marker("django_db") is None and \
                item.get_closest_marker("skipif") is None and \
                not DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("nodb")


def _serialise_live_server_on_sqlite() -> None:
    """On SQLite the live server's request threads share the test's one in-memory connection,
    and sqlite3 connections are not made for concurrent use: a page fetching its stylesheet
    while another request saved the session saw the session row twice ("get() returned more
    than one Session", CI). Requests run one at a time there; PostgreSQL keeps them parallel.
    The body is drawn inside the lock too, so a streamed CSV export is no exception."""
    import threading

    from django.core.servers.basehttp import ThreadedWSGIServer
    from django.test.testcases import LiveServerThread

    class SerialWSGIServer(ThreadedWSGIServer):
        def set_app(self, application):
            lock = threading.Lock()

            def serial(environ, start_response):
                from django.db import connection

                if connection.vendor != "sqlite":
                    return application(environ, start_response)
                with lock:
                    result = application(environ, start_response)
                    try:
                        return [b"".join(result)]
                    finally:
                        getattr(result, "close", lambda: None)()

            super().set_app(serial)

    LiveServerThread.server_class = SerialWSGIServer


@functools.cache
def _empty_dns_zone():
    from tests.lib.dns_zone import DnsZone

    zone = DnsZone({})
    zone.__enter__()  # lives as long as the test process
    return zone


@pytest.fixture(autouse=True)
def _attachment_dir(settings, tmp_path):
    settings.ATTACHMENT_DIR = tmp_path / "attachments"
    # sender authentication never asks the network's DNS: an empty zone on loopback answers
    # "no such name" at once (tests that need records start their own tests/lib/dns_zone.py)
    zone = _empty_dns_zone()
    settings.MAILROOM_DNS_SERVERS = f"{zone.config.nameservers[0]}:{zone.config.port}"
    settings.MAILROOM_DNS_TIMEOUT = 2.0
    # the empty zone has no SPF, DKIM or DMARC for any domain: a campaign would need a reason
    # to start; the deliverability tests publish records and turn the check back on
    settings.MAILROOM_CAMPAIGN_DNS_CHECK = False
    # real hashing costs ~0.3 s per user; tests check access rules, not PBKDF2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # a test's rolled-back rules must not linger in the few-seconds rule cache
    from mailroom.automation import rule_cache

    rule_cache.clear()


@pytest.fixture
def client_for(client):
    """`client_for(user)`: the test client, signed in as `user` through the login check."""
    def login(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return login


@pytest.fixture
def acme(db):
    from mailroom.core.models import Company

    return Company.objects.create(name="Acme Corp", email="hello@acme.test", city="Lyon",
                                  country="FR", language="fr_FR", timezone="Europe/Paris")


@pytest.fixture
def globex(db):
    from mailroom.core.models import Company

    return Company.objects.create(name="Globex", email="info@globex.test", country="US")


def make_user(username: str, companies, role: str, current=None):
    from django.contrib.auth.models import Group

    from mailroom.core.models import User

    user = User.objects.create_user(username=username, password=PASSWORD,
                                    email=f"{username}@example.test",
                                    first_name=username.capitalize(), is_staff=True)
    user.companies.set(companies)
    user.current_company = current or companies[0]
    user.save()
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def alice(acme):
    return make_user("alice", [acme], "Administrator")


@pytest.fixture
def bob(acme):
    return make_user("bob", [acme], "User")


@pytest.fixture
def mia(acme):
    return make_user("mia", [acme], "Mail Manager")


@pytest.fixture
def tess(acme):
    return make_user("tess", [acme], "Template Editor")


@pytest.fixture
def charlie(globex):
    return make_user("charlie", [globex], "User")


@pytest.fixture
def dana(acme, globex):
    return make_user("dana", [acme, globex], "User", current=acme)


@pytest.fixture
def customer(acme):
    from mailroom.contacts.models import Partner

    return Partner.objects.create(company=acme, name="Ada Lovelace", email="ada@client.example",
                                  language="en_GB")


@pytest.fixture
def lead(acme, bob, customer):
    from mailroom.business.crm.models import Lead
    from mailroom.chatter.services import save_record

    return save_record(Lead(company=acme, name="Big deal", partner=customer, user=bob),
                       actor=bob)


@pytest.fixture
def globex_lead(globex, charlie):
    from mailroom.business.crm.models import Lead
    from mailroom.chatter.services import save_record

    return save_record(Lead(company=globex, name="Globex secret deal"), actor=charlie)
