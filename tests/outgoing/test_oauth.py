"""XOAUTH2 tokens: refresh when expired, reuse while valid, rotation stored encrypted, clear
errors, and no rotated refresh token lost when workers refresh at once. The provider is a
fake token endpoint on loopback speaking the documented protocol (tests/outgoing/fake_oauth)."""

import base64
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from mailroom.core import oauth
from mailroom.core.secrets import decrypt
from mailroom.outgoing.models import FailureType, MailServer
from tests.outgoing.fake_oauth import MICROSOFT_SCOPE, FakeTokenEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(settings):
    fake = FakeTokenEndpoint().start()
    settings.MAILROOM_OAUTH_TOKEN_URLS = fake.urls
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch):
    monkeypatch.setattr(oauth, "REVOKED_GRACE_SECONDS", 0)


def make_server(company, provider="google", **extra):
    values = dict(
        company=company, name=f"{provider} relay", host="smtp.example.test", port=587,
        auth=MailServer.Auth.XOAUTH2, username="billing@acme.example",
        oauth_provider=provider, oauth_client_id="client-123",
        oauth_client_secret="secret-456", oauth_refresh_token="rt-0")
    values.update(extra)
    return MailServer.objects.create(**values)


def raw_column(server, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM outgoing_mailserver WHERE id = %s", [server.pk])
        return cursor.fetchone()[0]


def test_refreshes_an_expired_token_and_stores_it(acme, endpoint):
    server = make_server(acme, oauth_access_token="old",
                         oauth_token_expires_at=timezone.now() - timedelta(minutes=5))
    assert oauth.access_token(server) == "at-1"
    [request] = endpoint.requests
    assert request["path"] == "/google/token"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"grant_type": "refresh_token", "client_id": "client-123",
                               "client_secret": "secret-456", "refresh_token": "rt-0"}
    stored = MailServer.objects.get(pk=server.pk)
    assert stored.oauth_access_token == "at-1"
    assert stored.oauth_refresh_token == "rt-0"  # Google did not rotate it
    left = stored.oauth_token_expires_at - timezone.now()
    assert timedelta(minutes=58) < left <= timedelta(seconds=3599)
    assert "at-1" not in raw_column(server, "oauth_access_token")


def test_a_valid_token_is_reused_without_asking(acme, endpoint):
    server = make_server(acme, oauth_access_token="still-good",
                         oauth_token_expires_at=timezone.now() + timedelta(minutes=30))
    assert oauth.access_token(server) == "still-good"
    assert oauth.access_token(MailServer.objects.get(pk=server.pk)) == "still-good"
    assert endpoint.requests == []


def test_a_token_about_to_expire_is_refreshed_once(acme, endpoint):
    server = make_server(acme, oauth_access_token="nearly",
                         oauth_token_expires_at=timezone.now() + timedelta(seconds=30))
    assert oauth.access_token(server) == "at-1"
    assert oauth.access_token(server) == "at-1"  # kept in memory
    assert oauth.access_token(MailServer.objects.get(pk=server.pk)) == "at-1"  # and stored
    assert len(endpoint.requests) == 1


def test_another_worker_already_refreshed_so_the_stored_token_is_used(acme, endpoint):
    server = make_server(acme)
    stale = MailServer.objects.get(pk=server.pk)  # a worker's copy from before the refresh
    assert oauth.access_token(server) == "at-1"
    assert oauth.access_token(stale) == "at-1"
    assert len(endpoint.requests) == 1


def test_microsoft_rotation_is_stored_encrypted(acme, endpoint):
    server = make_server(acme, "microsoft")
    assert oauth.access_token(server) == "at-1"
    form = endpoint.requests[0]["form"]
    assert endpoint.requests[0]["path"] == "/microsoft/token"
    assert form["scope"] == MICROSOFT_SCOPE and form["refresh_token"] == "rt-0"

    stored = MailServer.objects.get(pk=server.pk)
    assert stored.oauth_refresh_token == "rt-1"
    raw = raw_column(server, "oauth_refresh_token")
    assert raw != "rt-1" and "rt-1" not in raw
    assert decrypt(raw) == "rt-1"

    # the old refresh token is dead at the provider; the next refresh must use the new one
    stored.oauth_token_expires_at = timezone.now() - timedelta(seconds=1)
    stored.save()
    assert oauth.access_token(stored) == "at-2"
    assert endpoint.requests[-1]["form"]["refresh_token"] == "rt-1"
    assert MailServer.objects.get(pk=server.pk).oauth_refresh_token == "rt-2"


@pytest.mark.parametrize("provider, name", [("google", "Google"), ("microsoft", "Microsoft")])
def test_invalid_grant_says_reconnect(acme, endpoint, provider, name):
    server = make_server(acme, provider)
    endpoint.revoke_all()
    with pytest.raises(oauth.OAuthRevoked) as info:
        oauth.access_token(server)
    assert str(info.value).startswith(
        f"The {name} authorization was revoked or expired: reconnect the account.")
    assert info.value.failure_type == FailureType.AUTHENTICATION
    assert not info.value.temporary
    assert MailServer.objects.get(pk=server.pk).oauth_refresh_token == "rt-0"


def test_bad_client_credentials_are_a_configuration_error(acme, endpoint):
    server = make_server(acme, oauth_client_secret="wrong")
    with pytest.raises(oauth.OAuthConfigError, match="client ID or client secret"):
        oauth.access_token(server)


def test_provider_outage_is_temporary(acme, endpoint):
    endpoint.fail_with = 503
    with pytest.raises(oauth.OAuthUnavailable) as info:
        oauth.access_token(make_server(acme))
    assert info.value.temporary and info.value.failure_type == FailureType.UNREACHABLE


def test_unreachable_endpoint_is_temporary(acme, settings):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.MAILROOM_OAUTH_TOKEN_URLS = {"google": f"http://127.0.0.1:{port}/token"}
    with pytest.raises(oauth.OAuthUnavailable, match="could not be reached"):
        oauth.access_token(make_server(acme))


@pytest.mark.parametrize("extra, message", [
    ({"oauth_refresh_token": ""}, "not connected"),
    ({"oauth_client_secret": ""}, "client ID and client secret"),
    ({"oauth_provider": ""}, "Choose the OAuth provider"),
])
def test_incomplete_configuration_is_explained(acme, endpoint, extra, message):
    with pytest.raises(oauth.OAuthConfigError, match=message):
        oauth.access_token(make_server(acme, **extra))
    assert endpoint.requests == []


def test_secrets_never_go_over_plain_http_to_another_host(acme, settings):
    settings.MAILROOM_OAUTH_TOKEN_URLS = {"google": "http://oauth.example.test/token"}
    with pytest.raises(oauth.OAuthConfigError, match="must use https"):
        oauth.access_token(make_server(acme))


def test_production_endpoints_are_https():
    assert all(url.startswith("https://") for url in oauth.TOKEN_URLS.values())
    assert oauth.TOKEN_URLS["google"] == "https://oauth2.googleapis.com/token"
    assert oauth.TOKEN_URLS["microsoft"] == (
        "https://login.microsoftonline.com/common/oauth2/v2.0/token")


# --- two workers refreshing the same server ------------------------------------------------

def test_losing_the_store_race_reuses_the_winners_tokens(acme, endpoint, monkeypatch):
    server = make_server(acme, "microsoft")
    real_refresh = oauth._refresh

    def refresh_while_another_worker_stores(srv, refresh_token):
        grant = real_refresh(srv, refresh_token)
        MailServer.objects.filter(pk=srv.pk).update(  # the other worker commits first
            oauth_access_token="at-other", oauth_refresh_token="rt-other",
            oauth_token_expires_at=timezone.now() + timedelta(hours=1))
        return grant

    monkeypatch.setattr(oauth, "_refresh", refresh_while_another_worker_stores)
    assert oauth.access_token(server) == "at-other"
    stored = MailServer.objects.get(pk=server.pk)
    assert (stored.oauth_access_token, stored.oauth_refresh_token) == ("at-other", "rt-other")
    assert server.oauth_access_token == "at-other"


def test_invalid_grant_after_another_worker_rotated_uses_its_token(acme, endpoint,
                                                                   monkeypatch):
    server = make_server(acme, "microsoft")
    real_refresh = oauth._refresh
    calls = []

    def other_worker_refreshes_first(srv, refresh_token):
        if not calls:  # the other worker uses rt-0 first and stores what it got
            calls.append(1)
            other = real_refresh(srv, refresh_token)
            MailServer.objects.filter(pk=srv.pk).update(
                oauth_access_token=other.access_token,
                oauth_refresh_token=other.refresh_token,
                oauth_token_expires_at=other.expires_at)
        return real_refresh(srv, refresh_token)  # rt-0 is now spent: invalid_grant

    monkeypatch.setattr(oauth, "_refresh", other_worker_refreshes_first)
    assert oauth.access_token(server) == "at-1"
    assert MailServer.objects.get(pk=server.pk).oauth_refresh_token == "rt-1"
    assert endpoint.valid_refresh_tokens == {"rt-1"}


def _serialized(func, lock):
    def call(*args):
        with lock:
            return func(*args)
    return call


def _refresh_in_threads(server_pk: int, count: int) -> list:
    barrier = threading.Barrier(count)
    results: list = []

    def work():
        try:
            server = MailServer.objects.get(pk=server_pk)
            barrier.wait()
            results.append(oauth.access_token(server))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers, retire_used", [
    ("one", True),  # threads of one worker process share a lock: one refresh
    ("two", False),  # as Microsoft does: the used refresh token stays valid a while
    ("two", True),  # one-time refresh tokens: the slower worker gets invalid_grant
], ids=["threads-of-one-worker", "two-workers", "two-workers-one-time-tokens"])
def test_concurrent_refresh_keeps_the_latest_rotated_token(acme, endpoint, monkeypatch,
                                                           workers, retire_used):
    server = make_server(acme, "microsoft")
    endpoint.retire_used = retire_used
    if workers == "two":  # no shared in-process lock: only the database arbitrates
        monkeypatch.setattr(oauth, "_lock_for", lambda pk: threading.Lock())
        monkeypatch.setattr(oauth, "REVOKED_GRACE_SECONDS", 10)
    if connection.vendor == "sqlite":
        # A SQLite file makes a second writer wait (busy timeout); the shared-cache in-memory
        # test database answers "table is locked" instead. Wait here as a file would; the
        # token requests themselves still race.
        db_lock = threading.Lock()
        for name in ("_read", "_store", "_is_unchanged"):  # each query, not the waiting
            monkeypatch.setattr(oauth, name, _serialized(getattr(oauth, name), db_lock))
    results = _refresh_in_threads(server.pk, 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = MailServer.objects.get(pk=server.pk)
    # both workers use the pair that was stored, and its refresh token is a live rotated one
    assert results == [stored.oauth_access_token] * 2
    assert stored.oauth_refresh_token != "rt-0"
    assert stored.oauth_refresh_token in endpoint.valid_refresh_tokens
    if workers == "one":
        assert len(endpoint.requests) == 1 and results == ["at-1", "at-1"]
    # and the next refresh works with it
    stored.oauth_token_expires_at = timezone.now() - timedelta(seconds=1)
    stored.save()
    assert oauth.access_token(stored).startswith("at-")
    assert MailServer.objects.get(pk=server.pk).oauth_refresh_token in (
        endpoint.valid_refresh_tokens)


# --- the SASL string -----------------------------------------------------------------------

def test_xoauth2_string_matches_googles_example():
    # https://developers.google.com/gmail/imap/xoauth2-protocol
    token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    assert oauth.xoauth2_string("someuser@example.com", token) == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")
    assert base64.b64decode(oauth.xoauth2_string("a@b.example", "t")) == (
        b"user=a@b.example\x01auth=Bearer t\x01\x01")


@pytest.mark.parametrize("username, token", [("a@b.example\x01", "t"), ("a@b.example", "t\r\n")])
def test_xoauth2_string_refuses_control_characters(username, token):
    with pytest.raises(ValueError):
        oauth.xoauth2_string(username, token)
