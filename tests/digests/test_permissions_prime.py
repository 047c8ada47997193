"""prime() gives has_perm/has_role exactly Django's answers, loaded for a chunk at once."""

from __future__ import annotations

from django.contrib.auth.models import Permission

from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.digests.permissions import prime


def test_primed_answers_equal_djangos_own(acme, alice, bob, mia, tess, django_assert_num_queries):
    extra = Permission.objects.get(codename="view_invoice")
    tess.user_permissions.add(extra)
    perms = ["invoicing.view_invoice", "crm.view_lead", "outgoing.view_outgoingmail",
             "digests.change_digest", "incoming.view_inboundmail"]
    expected = {}
    for user in User.objects.filter(pk__in=[alice.pk, bob.pk, mia.pk, tess.pk]):
        expected[user.pk] = ([user.has_perm(p) for p in perms],
                             [user.has_role(r) for r in Role])
    fresh = list(User.objects.filter(pk__in=[alice.pk, bob.pk, mia.pk, tess.pk]))
    with django_assert_num_queries(3):
        prime(fresh)
    with django_assert_num_queries(0):
        got = {u.pk: ([u.has_perm(p) for p in perms], [u.has_role(r) for r in Role])
               for u in fresh}
    assert got == expected
    assert got[tess.pk][0][0] is True  # a permission given to the user directly counts
