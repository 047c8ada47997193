"""core.saving and core.prepared against the ORM they stand in for, on both databases: the
same rows, the same signals, the same failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import signals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.chatter.models import Follower, Message
from mailroom.contacts.models import Partner
from mailroom.core import saving
from mailroom.core.prepared import Prepared
from mailroom.incoming.models import InboundMail

pytestmark = pytest.mark.django_db

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=60)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 1, 1),
                       timezones=st.just(UTC))
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**31, 2**31) | text,
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(text, inner, max_size=3), max_leaves=8)
examples = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _row(model, pk) -> dict:
    row = model.objects.filter(pk=pk).values().get()
    row.pop("id")
    return row


def _message(acme, lead_type, lead_pk, data) -> Message:
    return Message(company=acme, content_type=lead_type, object_id=lead_pk, **data)


message_fields = st.fixed_dictionaries({
    "message_type": st.sampled_from(Message.Type.values),
    "direction": st.sampled_from(Message.Direction.values),
    "author_name": text, "email_from": text, "subject": text, "body_html": text,
    "message_id": text, "in_reply_to": text, "references": text, "date": moments})

mail_fields = st.fixed_dictionaries({
    "source": st.sampled_from(InboundMail.Source.values),
    "envelope_from": text, "envelope_to": st.lists(text, max_size=3),
    "remote_ip": st.none() | st.ip_addresses().map(str), "helo": text,
    "raw_sha256": st.text("0123456789abcdef", min_size=64, max_size=64),
    "raw_size": st.integers(0, 2**40), "received_at": moments, "subject": text,
    "is_automatic": st.booleans(), "trace": st.lists(json_values, max_size=3),
    "state": st.sampled_from(InboundMail.State.values), "attempts": st.integers(0, 1000),
    "object_id": st.none() | st.integers(1, 2**40)})


@examples
@given(data=message_fields)
def test_an_inserted_message_is_the_row_save_writes(acme, lead, data):
    from django.contrib.contenttypes.models import ContentType

    lead_type = ContentType.objects.get_for_model(lead)
    saved = _message(acme, lead_type, lead.pk, data)
    saved.save()
    inserted = saving.insert(_message(acme, lead_type, lead.pk, data))
    assert inserted.pk is not None and inserted.pk != saved.pk
    assert not inserted._state.adding and inserted._state.db == "default"
    assert _row(Message, inserted.pk) == _row(Message, saved.pk)


@examples
@given(data=mail_fields, changes=mail_fields)
def test_inserted_and_updated_json_times_and_addresses_match_save(acme, data, changes):
    saved = InboundMail(company=acme, **data)
    saved.save()
    inserted = saving.insert(InboundMail(company=acme, **data))
    assert _row(InboundMail, inserted.pk) == _row(InboundMail, saved.pk)
    for name, value in changes.items():
        setattr(saved, name, value)
        setattr(inserted, name, value)
    names = sorted(changes)[:7]  # some of the fields, as the router names its own
    saved.save(update_fields=names)
    saving.update(inserted, names)
    assert _row(InboundMail, inserted.pk) == _row(InboundMail, saved.pk)


@examples
@given(rows=st.lists(mail_fields, min_size=1, max_size=4))
def test_rows_inserted_together_are_those_bulk_create_writes(acme, rows):
    InboundMail.objects.all().delete()
    InboundMail.objects.bulk_create([InboundMail(company=acme, **data) for data in rows])
    by_django = sorted((_row(InboundMail, pk) for pk in InboundMail.objects.values_list(
        "pk", flat=True)), key=repr)
    InboundMail.objects.all().delete()
    mails = [InboundMail(company=acme, **data) for data in rows]
    saving.insert_many(mails)
    assert all(not m._state.adding and m._state.db == "default" for m in mails)
    ours = sorted((_row(InboundMail, pk) for pk in InboundMail.objects.values_list(
        "pk", flat=True)), key=repr)
    assert ours == by_django


def test_rows_inserted_together_skip_conflicts_only_when_asked(acme):
    first = InboundMail(company=acme, source="smtp", raw_sha256="0" * 64, raw_size=1,
                        source_key="intake:x:1")
    saving.insert_many([first])
    again = [InboundMail(company=acme, source="smtp", raw_sha256="1" * 64, raw_size=2,
                         source_key=key) for key in ("intake:x:1", "intake:x:2")]
    saving.insert_many(again, ignore_conflicts=True)
    assert dict(InboundMail.objects.values_list("source_key", "raw_size")) == {
        "intake:x:1": 1, "intake:x:2": 2}  # the first copy kept, the new one added
    with pytest.raises(IntegrityError), transaction.atomic():
        saving.insert_many([InboundMail(company=acme, source="smtp", raw_sha256="2" * 64,
                                        raw_size=3, source_key="intake:x:2")])


def test_the_signals_are_those_of_save(acme):
    seen = []

    def pre(sender, **kwargs):
        seen.append(("pre", kwargs["instance"].name, kwargs["raw"], kwargs["update_fields"]))

    def post(sender, **kwargs):
        seen.append(("post", kwargs["instance"].pk is not None, kwargs["created"],
                     kwargs["update_fields"]))

    signals.pre_save.connect(pre, sender=Partner)
    signals.post_save.connect(post, sender=Partner)
    try:
        Partner(company=acme, name="A", email="a@x.example").save()
        by_save = list(seen)
        seen.clear()
        partner = saving.insert(Partner(company=acme, name="A", email="b@x.example"))
        assert seen == by_save == [("pre", "A", False, None), ("post", True, True, None)]
        seen.clear()
        partner.name = "B"
        partner.save(update_fields=["name"])
        by_save = list(seen)
        seen.clear()
        saving.update(partner, ["name"])
        assert seen == by_save
        assert by_save[0][3] == frozenset({"name"})
    finally:
        signals.pre_save.disconnect(pre, sender=Partner)
        signals.post_save.disconnect(post, sender=Partner)


def test_a_failed_insert_spoils_the_enclosing_transaction_as_save_does(acme, lead, customer):
    from django.contrib.contenttypes.models import ContentType

    thread = {"company": acme, "content_type": ContentType.objects.get_for_model(lead),
              "object_id": lead.pk, "partner": customer}
    Follower.objects.create(**thread)
    with transaction.atomic():  # a savepoint of the test's transaction
        with pytest.raises(IntegrityError):
            with transaction.atomic(savepoint=False):
                saving.insert(Follower(**thread))
        assert connection.needs_rollback  # what save() does there too
    # rolled back to the savepoint: the connection works again
    assert Follower.objects.filter(**thread).count() == 1


def test_updating_a_row_that_is_gone_fails_as_save_does(acme):
    partner = saving.insert(Partner(company=acme, name="Gone", email="gone@x.example"))
    Partner.objects.filter(pk=partner.pk).delete()
    partner.name = "Still here?"
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        saving.update(partner, ["name"])
    with pytest.raises(ValueError):  # a field the model does not have: save()'s own error
        saving.update(partner, ["no_such_field"])


def test_a_model_with_its_own_save_is_saved_by_it(acme):
    from mailroom.business.helpdesk.models import Ticket

    first = saving.insert(Ticket(company=acme, name="Printer on fire"))
    second = saving.insert(Ticket(company=acme, name="Printer still on fire"))
    assert (first.ref, second.ref) == ("HD-00001", "HD-00002")  # its save() numbered them
    assert saving._insert_plan(Ticket, "default") is None


def test_a_numbered_record_is_inserted_once_its_own_save_took_the_number(acme, globex):
    """Numbered.save() takes the number, then hands the row to insert_from_save: the row
    and the signals are those of Django's save; with arguments save() knows, Django's own."""
    from mailroom.business.helpdesk.models import Ticket

    seen = []

    def post(sender, **kwargs):
        seen.append((kwargs["instance"].ref, kwargs["created"]))

    signals.post_save.connect(post, sender=Ticket)
    try:
        first = Ticket(company=acme, name="Printer on fire")
        first.save()
        Ticket(company=globex, name="Elsewhere").save()
        forced = Ticket(company=acme, name="Forced")
        forced.save(force_insert=True)  # not the plain case: Django's save() writes it
    finally:
        signals.post_save.disconnect(post, sender=Ticket)
    assert seen == [("HD-00001", True), ("HD-00001", True), ("HD-00002", True)]
    assert not first._state.adding and first.pk is not None
    assert Ticket.objects.get(pk=first.pk).ref == "HD-00001"
    assert list(Ticket.objects.filter(company=acme).order_by("number")
                .values_list("number", "ref")) == [(1, "HD-00001"), (2, "HD-00002")]


# --- core.prepared -------------------------------------------------------------------------

by_record = Prepared(lambda company, object_id: Follower.objects.filter(
    company_id=company, object_id=object_id).order_by("pk").values_list("pk", "partner_id"))
by_email = Prepared(lambda email: Partner.objects.filter(email__icontains=email)
                    .order_by("pk").values_list("pk", "created_at"))


def test_a_prepared_query_answers_as_its_queryset(acme, globex, lead, customer):
    from django.contrib.contenttypes.models import ContentType

    kind = ContentType.objects.get_for_model(lead)
    other = Partner.objects.create(company=acme, name="Bea", email="bea@client.example")
    for partner in (customer, other):
        Follower.objects.create(company=acme, content_type=kind, object_id=lead.pk,
                                partner=partner)
    for company, object_id in ((acme.pk, lead.pk), (globex.pk, lead.pk), (acme.pk, 0)):
        expected = list(Follower.objects.filter(company_id=company, object_id=object_id)
                        .order_by("pk").values_list("pk", "partner_id"))
        assert by_record.rows(company, object_id) == expected
    assert by_record.exists(acme.pk, lead.pk) and not by_record.exists(globex.pk, lead.pk)
    assert by_record._plans[(int, int)] is not None  # compiled once, bound since


def test_a_lookup_that_rewrites_its_value_is_asked_through_the_orm(customer):
    rows = by_email.rows("ADA@client")
    assert rows == [(customer.pk, customer.created_at)]  # converted as the ORM converts
    assert isinstance(rows[0][1], datetime)
    assert by_email._plans[(str,)] is None  # %…% around the value: no plain binding
    assert by_email.rows("nobody@client.example") == []
