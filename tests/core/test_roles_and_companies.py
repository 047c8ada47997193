import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError

from mailroom.business.crm.models import Lead
from mailroom.core import services
from mailroom.core.models import AuditLog, Company
from mailroom.core.roles import Role


def test_role_groups_exist_with_permissions(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {r.value for r in Role} <= names
    user_perms = set(Group.objects.get(name="User").permissions.values_list("codename", flat=True))
    assert {"view_lead", "add_lead", "change_lead"} <= user_perms
    assert "delete_lead" not in user_perms
    assert "change_company" not in user_perms
    admin_perms = set(
        Group.objects.get(name="Administrator").permissions.values_list("codename", flat=True)
    )
    assert "change_company" in admin_perms
    assert "view_auditlog" in admin_perms
    assert "change_auditlog" not in admin_perms and "delete_auditlog" not in admin_perms


def test_administrator_holds_every_role(alice, bob, mia):
    assert all(alice.has_role(r) for r in Role)
    assert bob.has_role(Role.USER) and not bob.has_role(Role.MAIL_MANAGER)
    assert mia.has_role(Role.MAIL_MANAGER) and not mia.has_role(Role.TEMPLATE_EDITOR)


def test_for_user_isolates_companies(lead, globex_lead, bob, charlie, dana):
    assert list(Lead.objects.for_user(bob)) == [lead]
    assert list(Lead.objects.for_user(charlie)) == [globex_lead]
    assert set(Lead.objects.for_user(dana)) == {lead, globex_lead}
    assert list(Lead.objects.for_current_company(dana)) == [lead]


def test_switch_company_only_to_own_companies(dana, charlie, acme, globex):
    services.switch_company(dana, globex.pk)
    dana.refresh_from_db()
    assert dana.current_company == globex
    with pytest.raises(ValidationError):
        services.switch_company(charlie, acme.pk)


def test_company_changes_are_audited_and_admin_only(alice, bob, acme):
    acme.city = "Paris"
    services.save_company(acme, actor=alice)
    entry = AuditLog.objects.get(action="company.update")
    assert entry.before == {"city": "Lyon"} and entry.after == {"city": "Paris"}
    assert entry.actor == alice and entry.company == acme
    with pytest.raises(PermissionDenied):
        services.save_company(acme, actor=bob)


def test_new_company_joins_its_creator(alice):
    company = services.save_company(Company(name="Initech"), actor=alice)
    assert company.pk in alice.company_ids()
    assert AuditLog.objects.filter(action="company.create", object_id=str(company.pk)).exists()


def test_audit_log_is_append_only(alice, acme):
    entry = services.audit("test.action", actor=alice, obj=acme, after={"x": 1})
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


def test_user_roles_and_companies_are_audited(alice, bob, acme, globex):
    alice.companies.add(globex)  # one gives only companies one administers (test_user_takeover)
    alice.forget_companies()
    services.save_user(bob, actor=alice, companies=[acme, globex], roles=[Role.MAIL_MANAGER])
    bob.refresh_from_db()
    assert bob.has_role(Role.MAIL_MANAGER)
    entry = AuditLog.objects.filter(action="user.update").latest("id")
    assert entry.after["roles"] == ["Mail Manager"]
    assert entry.after["companies"] == sorted([acme.pk, globex.pk])
    assert "password" not in entry.after
    with pytest.raises(PermissionDenied):
        services.save_user(alice, actor=bob, roles=[Role.USER])


def test_company_logo_is_served_but_nothing_else_in_media(client, acme, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "logos").mkdir()
    (tmp_path / "logos" / "acme.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "private.txt").write_text("secret")
    assert client.get("/media/logos/acme.png").status_code == 200
    assert client.get("/media/private.txt").status_code in (302, 404)
    assert client.get("/media/logos/../private.txt").status_code in (302, 404)


def test_bad_cron_schedule_is_a_form_error_and_changes_are_audited(client, mia):
    from django.urls import reverse

    from mailroom.core.cron import ensure_job
    from tests.conftest import PASSWORD

    job = ensure_job("nightly-check", "noop", "@every 1h")
    assert client.login(username="mia", password=PASSWORD)
    url = reverse("admin:core_cronjob_change", args=[job.pk])
    form = {"name": job.name, "schedule": "every tuesday-ish", "enabled": "on",
            "next_run_at_0": "2026-11-24", "next_run_at_1": "10:00:00"}
    page = client.post(url, form)
    assert page.status_code == 200 and b"crontab line" in page.content
    form["schedule"] = "@every 5m"
    assert client.post(url, form).status_code == 302
    job.refresh_from_db()
    assert job.schedule == "@every 5m"
    entry = AuditLog.objects.get(action="cronjob.update")
    assert entry.after["schedule"] == "@every 5m" and entry.actor == mia
