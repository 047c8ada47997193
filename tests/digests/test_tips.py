"""Tips: targeting, rotation and cycling, the batch pick's queries, show counts, translations,
the sandboxed body and the shipped tips."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import resolve
from django.utils import timezone

from mailroom.core.models import User
from mailroom.digests import predefined_tips, tip_services, tips
from mailroom.digests.models import Tip, TipTranslation, TipView


@pytest.fixture
def no_shipped(db):
    """Tests of the rotation start from no tip (the migration ships some)."""
    Tip.objects.all().delete()


def make_tip(title, sequence=10, company=None, **fields):
    fields.setdefault("body", f"<p>{title}</p>")
    return Tip.objects.create(title=title, sequence=sequence, company=company, **fields)


def show(user, tip, when):
    tips.record_shown([(tip, user)], now=when)


# --- rotation ------------------------------------------------------------------------------------

def test_rotation_follows_sequence_then_cycles_least_recently_seen_first(no_shipped, acme, bob):
    second = make_tip("Second", sequence=20)
    first = make_tip("First", sequence=10)
    third = make_tip("Third", sequence=20)  # same sequence as Second: by id, after it
    now = timezone.now()
    order = []
    for day in range(3):
        tip = tips.pick(bob, acme)
        order.append(tip)
        show(bob, tip, now + timedelta(days=day))
    assert order == [first, second, third]
    # all seen: the least recently shown comes back first, then the next oldest
    assert tips.pick(bob, acme) == first
    show(bob, first, now + timedelta(days=3))
    assert tips.pick(bob, acme) == second
    show(bob, second, now + timedelta(days=4))
    assert tips.pick(bob, acme) == third


def test_pick_writes_nothing(no_shipped, acme, bob):
    tip = make_tip("Only")
    assert tips.pick(bob, acme) == tip
    assert tips.pick(bob, acme) == tip
    assert not TipView.objects.exists()
    tip.refresh_from_db()
    assert tip.shown_count == 0


def test_a_new_tip_comes_before_cycling(no_shipped, acme, bob):
    old = make_tip("Old")
    show(bob, old, timezone.now())
    new = make_tip("New", sequence=99)
    assert tips.pick(bob, acme) == new


def test_inactive_and_other_company_tips_are_never_picked(no_shipped, acme, globex, bob):
    make_tip("Off", active=False)
    make_tip("Globex's", company=globex)
    own = make_tip("Acme's", sequence=50, company=acme)
    assert tips.pick(bob, acme) == own


def test_no_tip_at_all_is_none(no_shipped, acme, bob):
    assert tips.pick(bob, acme) is None
    assert tips.pick_many([bob], acme) == {bob.pk: None}


# --- targeting -----------------------------------------------------------------------------------

def test_roles_target_users_and_administrators_hold_every_role(no_shipped, acme, alice, bob,
                                                               mia, tess):
    managers = make_tip("For mail managers", roles=["Mail Manager"])
    editors = make_tip("For template editors", sequence=20, roles=["Template Editor"])
    picked = tips.pick_many([alice, bob, mia, tess], acme)
    assert picked == {alice.pk: managers, bob.pk: None, mia.pk: managers, tess.pk: editors}


@pytest.fixture
def nobody(acme):
    """An office user without any role: may view no record type."""
    user = User.objects.create_user(username="nobody", password="x", email="nobody@acme.example")
    user.companies.set([acme])
    return user


def test_record_types_need_the_view_permission(no_shipped, acme, bob, nobody):
    invoices = make_tip("Invoices", record_types=["invoicing.invoice"])
    everyone = make_tip("Everyone", sequence=20)
    assert bob.has_perm("invoicing.view_invoice")
    assert not nobody.has_perm("invoicing.view_invoice")
    assert tips.pick_many([bob, nobody], acme) == {bob.pk: invoices, nobody.pk: everyone}


def test_a_permission_given_to_the_user_alone_counts(no_shipped, acme, nobody):
    invoices = make_tip("Invoices", record_types=["invoicing.invoice"])
    nobody.user_permissions.add(Permission.objects.get(codename="view_invoice",
                                                       content_type__app_label="invoicing"))
    assert tips.pick(nobody, acme) == invoices


def test_pick_many_queries_do_not_grow_with_users(no_shipped, acme, django_assert_max_num_queries):
    from tests.conftest import make_user

    for n in range(4):
        make_tip(f"Tip {n}", sequence=n, roles=["User"] if n % 2 else [],
                 record_types=["crm.lead"] if n == 2 else [])
    users = [make_user(f"user{n}", [acme], "User" if n % 3 else "Mail Manager")
             for n in range(50)]
    now = timezone.now()
    tips.record_shown([(Tip.objects.get(title="Tip 0"), u) for u in users[:10]], now=now)
    users = list(User.objects.filter(pk__in=[u.pk for u in users]).order_by("pk"))  # no cache
    with django_assert_max_num_queries(8):
        picked = tips.pick_many(users, acme, now=now)
    assert len(picked) == 50
    assert picked[users[1].pk].title == "Tip 1"  # a User who saw Tip 0
    assert picked[users[3].pk].title == "Tip 2"  # a Mail Manager who saw Tip 0: not Tip 1
    assert picked[users[20].pk].title == "Tip 0"


def test_pick_many_agrees_with_pick(no_shipped, acme, alice, bob, mia, tess):
    make_tip("A", roles=["Mail Manager"])
    make_tip("B", sequence=20, record_types=["crm.lead"])
    make_tip("C", sequence=30)
    show(bob, Tip.objects.get(title="B"), timezone.now())
    users = [alice, bob, mia, tess]
    assert tips.pick_many(users, acme) == {u.pk: tips.pick(u, acme) for u in users}


# --- counting shows ------------------------------------------------------------------------------

def test_record_shown_counts_views_and_tips(no_shipped, acme, alice, bob,
                                            django_assert_max_num_queries):
    one, two = make_tip("One"), make_tip("Two")
    first = timezone.now() - timedelta(days=7)
    tips.record_shown([(one, alice), (one, bob), (two, bob)], now=first)
    later = timezone.now()
    with django_assert_max_num_queries(4):
        tips.record_shown([(one, alice), (None, bob)], now=later)
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.shown_count, two.shown_count) == (3, 1)
    alice_one = TipView.objects.get(tip=one, user=alice)
    assert (alice_one.shown_count, alice_one.last_shown_at) == (2, later)
    assert TipView.objects.get(tip=one, user=bob).last_shown_at == first


# --- how a tip reads -----------------------------------------------------------------------------

def test_translation_by_language_then_base_language_then_own(no_shipped, acme, bob):
    tip = make_tip("Hello", body="<p>Hello</p>")
    TipTranslation.objects.create(tip=tip, language="fr_FR", title="Bonjour",
                                  body="<p>Bonjour</p>")
    TipTranslation.objects.create(tip=tip, language="en_GB", title="Hello, mate",
                                  body="<p>Hello, mate</p>")
    bob.language = "fr_FR"
    assert tips.render(tip, bob, acme)[0] == "Bonjour"
    bob.language = "en_US"  # no en_US translation: the en_GB one is the same language
    assert tips.render(tip, bob, acme) == ("Hello, mate", "<p>Hello, mate</p>")
    bob.language = "de_DE"
    assert tips.render(tip, bob, acme) == ("Hello", "<p>Hello</p>")
    bob.language, acme.language = "", "fr_FR"  # no choice of their own: the company's,
    assert tips.render(tip, bob, acme)[0] == "Bonjour"  # as the rest of the digest


def test_body_renders_user_and_company_names(no_shipped, acme, bob):
    tip = make_tip("Hi", body="<p>Hi {{ user.first_name }} ({{ user.name }}) of "
                              "{{ company.name }}</p><script>x()</script>")
    title, body = tips.render(tip, bob, acme)
    assert body == "<p>Hi Bob (Bob) of Acme Corp</p>"


def test_body_links_become_signed_click_redirects(no_shipped, acme, bob, settings):
    settings.BASE_URL = "https://mail.example.com"
    tip = make_tip("Links", body='<p><a href="/outgoing/dkimkey/">keys</a> '
                                 '<a href="mailto:help@example.com">help</a></p>')
    body = tips.render(tip, bob, acme)[1]
    hrefs = re.findall(r'href="([^"]*)"', body)
    assert hrefs[0].startswith("https://mail.example.com/digests/tips/click/")
    assert hrefs[1] == "mailto:help@example.com"


@pytest.mark.parametrize("body", ["<p>{{ user.password }}</p>", "<p>{{ user.__class__ }}</p>",
                                  "<p>{{ user.name.__class__ }}</p>", "<p>{{ object.name }}</p>",
                                  "<p>{% include 'x.html' %}</p>", "<p>{{ user.name</p>"])
def test_forbidden_body_is_refused_at_save(no_shipped, acme, mia, body):
    tip = Tip(company=acme, title="Bad", body=body)
    with pytest.raises(ValidationError) as caught:
        tip_services.save_tip(tip, actor=mia)
    assert "body" in caught.value.message_dict
    assert not Tip.objects.filter(title="Bad").exists()


def test_forbidden_translation_is_refused_at_save(no_shipped, acme, mia):
    tip = Tip(company=acme, title="Fine", body="<p>{{ user.name }}</p>")
    bad = TipTranslation(language="fr_FR", title="Mauvais", body="{{ user.password }}")
    with pytest.raises(ValidationError) as caught:
        tip_services.save_tip(tip, actor=mia, translations=[bad])
    assert "translations" in caught.value.message_dict


def test_save_writes_an_audit_row_and_guards_shipped_tips(no_shipped, acme, mia, alice):
    from mailroom.core.models import AuditLog

    tip = tip_services.save_tip(Tip(company=acme, title="Ours", body="<p>x</p>"), actor=mia)
    assert AuditLog.objects.filter(action="digests.tip.create", object_id=str(tip.pk)).exists()
    shipped = make_tip("Shipped", key="shipped")
    shipped.active = False
    with pytest.raises(PermissionDenied) as caught:
        tip_services.save_tip(shipped, actor=mia)
    assert "Administrators" in str(caught.value)
    tip_services.save_tip(shipped, actor=alice)
    assert Tip.objects.get(key="shipped").active is False


# --- the shipped tips ----------------------------------------------------------------------------

def test_shipped_tips_exist_with_working_back_office_links(db):
    shipped = list(Tip.objects.filter(company=None).exclude(key=""))
    assert len(shipped) >= 8
    assert {t.key for t in shipped} == {t["key"] for t in predefined_tips.TIPS}
    for tip in shipped:
        sources = [tip.body, *tip.translations.values_list("body", flat=True)]
        for source in sources:
            assert tip_services.validate_body(source) == [], tip.key
            links = re.findall(r'href="([^"]+)"', source)
            assert links, tip.key
            for link in links:
                resolve(link)  # a back-office page that exists (Resolver404 otherwise)
    assert TipTranslation.objects.filter(language="fr_FR").count() >= 5


def test_install_again_updates_texts_and_keeps_admin_choices(db):
    tip = Tip.objects.get(key="mailroom-dkim")
    tip.title, tip.active, tip.sequence = "Changed", False, 99
    tip.save()
    predefined_tips.install(Tip, TipTranslation)
    tip.refresh_from_db()
    assert (tip.title, tip.active, tip.sequence) == ("Sign your mail with DKIM", False, 99)


# --- in the digest -------------------------------------------------------------------------------

def test_a_digest_carries_the_next_tip_and_counts_it(no_shipped, acme, alice, bob, domain):
    from mailroom.digests import sending
    from mailroom.outgoing.models import OutgoingMail
    from tests.digests.conftest import make_digest

    first = make_tip("Use aliases", body='<p>See <a href="/routing/alias/">Aliases</a>.</p>')
    second = make_tip("Sign with DKIM", sequence=20)
    digest = make_digest(acme, actor=alice, recipients=[bob])
    sending.send_now(digest, actor=alice, to_all=True)
    html = OutgoingMail.objects.get(recipients__address=bob.email).body_html
    assert "Use aliases" in html
    assert "/digests/tips/click/" in html and "/digests/tips/useful/" in html
    first.refresh_from_db()
    assert first.shown_count == 1
    assert tips.pick(bob, acme) == second
