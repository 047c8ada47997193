"""A user of two companies is changed only by someone who administers both (issue 10, #1).

An Administrator of Globex alone used to open, edit and reset the password of dana (Acme and
Globex), then log in as her and read Acme; saving her form also dropped Acme from her.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from mailroom.core import services
from mailroom.core.models import ApiKey, AuditLog
from mailroom.core.roles import Role
from tests.conftest import PASSWORD, make_user


@pytest.fixture
def gina(globex):
    """Administrator of Globex only."""
    return make_user("gina", [globex], "Administrator")


@pytest.fixture
def boss(acme, globex):
    """Administrator of both companies."""
    return make_user("boss", [acme, globex], "Administrator", current=globex)


def refusals(action: str) -> int:
    return AuditLog.objects.filter(action=f"{action}.refused").count()


def test_partial_administrator_cannot_change_a_shared_user(gina, dana, acme, globex):
    assert not services.may_manage_user(gina, dana)
    with pytest.raises(PermissionDenied):
        services.save_user(dana, actor=gina, companies=[globex], roles=[Role.USER])
    with pytest.raises(PermissionDenied):
        services.set_password(dana, "new-secret-pass-9", actor=gina)
    dana.refresh_from_db()
    assert sorted(dana.company_ids()) == sorted([acme.pk, globex.pk])
    assert dana.check_password(PASSWORD)
    assert refusals("user.update") == 1 and refusals("user.password") == 1


def test_full_administrator_may_change_a_shared_user(boss, dana, acme, globex):
    assert services.may_manage_user(boss, dana)
    services.set_password(dana, "new-secret-pass-9", actor=boss)
    services.save_user(dana, actor=boss, companies=[acme], roles=[Role.USER])
    dana.refresh_from_db()
    assert dana.check_password("new-secret-pass-9")
    assert dana.company_ids() == [acme.pk]
    assert AuditLog.objects.filter(action="user.password", object_id=str(dana.pk)).exists()


def test_an_administrator_gives_only_companies_they_administer(alice, bob, globex):
    with pytest.raises(PermissionDenied):
        services.save_user(bob, actor=alice, companies=[globex], roles=[Role.USER])
    assert refusals("user.update") == 1


def test_superusers_are_changed_only_by_superusers(alice, acme, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "x")
    root.companies.set([acme])
    assert not services.may_manage_user(alice, root)
    with pytest.raises(PermissionDenied):
        services.set_password(root, "new-secret-pass-9", actor=alice)


def test_partial_administrator_cannot_touch_the_shared_users_api_keys(gina, boss, dana):
    key, _ = services.create_api_key(dana, actor=dana, name="laptop")
    with pytest.raises(PermissionDenied):
        services.create_api_key(dana, actor=gina, name="mine now")
    with pytest.raises(PermissionDenied):
        services.revoke_api_key(key, actor=gina)
    key.refresh_from_db()
    assert key.revoked_at is None
    assert refusals("apikey.create") == 1 and refusals("apikey.revoke") == 1
    services.revoke_api_key(key, actor=boss)
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_back_office_shows_the_shared_user_read_only(client, gina, dana, acme, globex):
    assert client.login(username="gina", password=PASSWORD)
    change = reverse("admin:core_user_change", args=(dana.pk,))
    page = client.get(change)
    assert page.status_code == 200  # visible as a member of the shared company
    assert b'name="email"' not in page.content  # but nothing to edit
    post = client.post(change, {"username": "dana", "email": "gina@evil.example",
                                "companies": [globex.pk], "roles": ["User"],
                                "is_active": "on", "language": "en_US", "timezone": "UTC"})
    assert post.status_code == 403
    password = reverse("admin:auth_user_password_change", args=(dana.pk,))
    assert client.get(password).status_code == 403
    post = client.post(password, {"password1": "Takeover-pass-77", "password2": "Takeover-pass-77",
                                  "usable_password": "true"})
    assert post.status_code == 403
    dana.refresh_from_db()
    assert dana.email == "dana@example.test"
    assert sorted(dana.company_ids()) == sorted([acme.pk, globex.pk])
    assert dana.check_password(PASSWORD)
    assert refusals("user.update") == 1 and refusals("user.password") == 1
    client.logout()
    assert not client.login(username="dana", password="Takeover-pass-77")


def test_back_office_lets_a_full_administrator_reset_the_password(client, boss, dana):
    assert client.login(username="boss", password=PASSWORD)
    password = reverse("admin:auth_user_password_change", args=(dana.pk,))
    response = client.post(password, {"password1": "Fresh-pass-2026x", "password2":
                                      "Fresh-pass-2026x", "usable_password": "true"})
    assert response.status_code == 302
    dana.refresh_from_db()
    assert dana.check_password("Fresh-pass-2026x")
    entry = AuditLog.objects.get(action="user.password", object_id=str(dana.pk))
    assert entry.actor_name == "boss"


def test_api_key_list_hides_the_shared_users_keys(client, gina, dana, charlie):
    services.create_api_key(dana, actor=dana, name="danas-key")
    services.create_api_key(charlie, actor=charlie, name="charlies-key")
    assert client.login(username="gina", password=PASSWORD)
    page = client.get(reverse("admin:core_apikey_changelist")).content.decode()
    assert "charlies-key" in page
    assert "danas-key" not in page
    key = ApiKey.objects.get(name="danas-key")
    client.post(reverse("admin:core_apikey_changelist"),
                {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None


def test_new_user_joins_the_creators_company(client, gina, globex):
    assert client.login(username="gina", password=PASSWORD)
    response = client.post(reverse("admin:core_user_add"), {
        "username": "newbie", "password1": "Fresh-pass-2026x", "password2": "Fresh-pass-2026x",
        "usable_password": "true"})
    assert response.status_code == 302
    from mailroom.core.models import User

    newbie = User.objects.get(username="newbie")
    assert newbie.company_ids() == [globex.pk]
    assert client.get(response.url).status_code == 200
