"""core.access.require: one permission check for the services and the API."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from mailroom.business.crm.models import Lead
from mailroom.core.access import perm, require
from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.routing.models import Alias


def test_perm_names_the_django_permission(lead):
    assert perm(Alias, "change") == "routing.change_alias"
    assert perm(lead, "delete") == "crm.delete_lead"


def test_a_permission_of_the_actors_roles_is_granted(mia, bob):
    require(mia, "routing.change_alias")
    require(bob, "crm.change_lead")


def test_a_missing_permission_is_refused_naming_action_and_model(bob):
    with pytest.raises(PermissionDenied, match=r"^Your roles do not allow you to change "
                                               r"aliases\.$"):
        require(bob, "routing.change_alias")
    with pytest.raises(PermissionDenied, match=r"^Only managers\.$"):
        require(bob, "routing.change_alias", denied="Only managers.")


def test_an_unknown_permission_is_refused_with_a_general_message(alice):
    with pytest.raises(PermissionDenied, match=r"^Your roles do not allow you to do this\.$"):
        require(alice, "nosuchapp.fly_rocket")


def test_roles(mia, bob, alice):
    require(mia, Role.MAIL_MANAGER)
    require(alice, Role.MAIL_MANAGER)  # an administrator holds every role
    require(alice, Role.ADMINISTRATOR)
    with pytest.raises(PermissionDenied, match=r"^Only Mail Managers\.$"):
        require(bob, Role.MAIL_MANAGER, denied="Only Mail Managers.")
    with pytest.raises(PermissionDenied):
        require(mia, Role.ADMINISTRATOR)


def test_obj_of_another_company_is_refused(lead, globex_lead, bob, charlie, dana):
    require(bob, "crm.change_lead", lead)
    require(dana, "crm.change_lead", lead)  # dana belongs to both companies
    require(dana, "crm.change_lead", globex_lead)
    with pytest.raises(PermissionDenied, match=r"^This lead belongs to another company\.$"):
        require(charlie, "crm.change_lead", lead)
    with pytest.raises(PermissionDenied, match=r"^Not yours\.$"):
        require(bob, "crm.change_lead", globex_lead, elsewhere="Not yours.")


def test_permission_is_checked_before_company(bob, globex_lead):
    with pytest.raises(PermissionDenied, match="do not allow"):
        require(bob, "crm.delete_lead", globex_lead)


def test_a_company_is_its_own_company(mia, acme, globex):
    require(mia, Role.MAIL_MANAGER, acme)
    with pytest.raises(PermissionDenied, match="another company"):
        require(mia, Role.MAIL_MANAGER, globex)


def test_obj_without_company_is_refused_to_members(bob, acme):
    with pytest.raises(PermissionDenied, match="another company"):
        require(bob, "crm.change_lead", Lead(name="Nobody's"))


def test_superuser_holds_everything_in_every_company(db, globex_lead, globex):
    root = User.objects.create_superuser("root", "root@example.test", "x")
    assert root.company_ids() == []
    require(root, "routing.delete_alias")
    require(root, Role.ADMINISTRATOR)
    require(root, "crm.delete_lead", globex_lead)
    require(root, Role.MAIL_MANAGER, globex)
    require(root, "crm.change_lead", Lead(name="Nobody's"))


def test_none_is_the_system_and_passes(globex_lead):
    require(None, "routing.delete_alias")
    require(None, Role.ADMINISTRATOR, globex_lead)


def test_anonymous_holds_nothing(lead):
    anonymous = AnonymousUser()
    with pytest.raises(PermissionDenied, match="do not allow you to view leads"):
        require(anonymous, "crm.view_lead")
    with pytest.raises(PermissionDenied, match=r"^Only administrators\.$"):
        require(anonymous, Role.ADMINISTRATOR, denied="Only administrators.")
    with pytest.raises(PermissionDenied):
        require(anonymous, "crm.view_lead", lead)


def test_an_inactive_user_holds_nothing(alice, lead, db):
    alice.is_active = False
    alice.save()
    with pytest.raises(PermissionDenied):
        require(alice, "crm.view_lead")
    with pytest.raises(PermissionDenied, match=r"^No\.$"):
        require(alice, Role.USER, denied="No.")
    with pytest.raises(PermissionDenied):
        require(alice, "crm.view_lead", lead)
    root = User.objects.create_superuser("root", "root@example.test", "x", is_active=False)
    with pytest.raises(PermissionDenied):
        require(root, Role.ADMINISTRATOR)
    with pytest.raises(PermissionDenied):
        require(root, "crm.view_lead")
