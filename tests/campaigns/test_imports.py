"""Contact imports: the guessed mapping, the preview's verdicts, and the worker step that
imports in chunks, reports bad rows with reasons and resumes after a crash without
duplicates."""

from __future__ import annotations

import io

import openpyxl
import pytest

from mailroom.campaigns import imports, services, tasks
from mailroom.campaigns.models import ImportBadRow, ImportJob, Subscription
from mailroom.contacts.models import Partner
from tests.campaigns.conftest import csv_bytes

pytestmark = pytest.mark.django_db
Reason = ImportBadRow.Reason


def start(newsletter, actor, content: bytes, filename: str = "people.csv",
          consent_how: str = "Trade fair 2026") -> ImportJob:
    fmt = imports.file_format(filename)
    first = next(imports.read_rows(content, fmt))
    has_header = imports.detect_header(first)
    mapping = imports.guess_mapping(first, has_header)
    total = sum(1 for _ in imports.data_rows(content, fmt, has_header))
    job = services.create_import(newsletter, actor=actor, filename=filename, content=content,
                                 file_format=fmt, consent_how=consent_how, mapping=mapping,
                                 has_header=has_header, total=total)
    return services.start_import(job, actor=actor, mapping=mapping, has_header=has_header,
                                 total=total)


def run(owner: str = "w1", **kwargs) -> ImportJob | None:
    job_id = tasks.claim(owner)
    if job_id is None:
        return None
    tasks.process(job_id, owner, **kwargs)
    return ImportJob.objects.get(pk=job_id)


def test_mapping_is_guessed_from_the_header():
    header = ["E-mail Address", "Full name", "Organisation", "Country code", "Lang", "Tags"]
    assert imports.detect_header(header)
    assert imports.guess_mapping(header, True) == {
        "email": 0, "name": 1, "company": 2, "country": 3, "language": 4, "tags": 5}


def test_a_file_without_header_finds_the_email_column_by_content():
    first = ["Ada", "ada@client.example", "FR"]
    assert not imports.detect_header(first)
    assert imports.guess_mapping(first, False) == {"email": 1}


def test_semicolon_csv_and_xlsx_are_read_alike():
    rows = [["email", "name"], ["ada@client.example", "Ada"]]
    assert list(imports.read_rows(csv_bytes(rows, ";"), "csv")) == rows
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    assert list(imports.read_rows(out.getvalue(), "xlsx")) == rows


def test_a_damaged_xlsx_says_so_in_plain_words():
    with pytest.raises(imports.ImportFileError, match="not an Excel"):
        list(imports.read_rows(b"PK\x03\x04 not really a zip", "xlsx"))
    with pytest.raises(imports.ImportFileError, match=".csv or .xlsx"):
        imports.file_format("people.pdf")


@pytest.fixture
def mixed_file(acme, newsletter, mia):
    """One good new person, one good existing contact, and one row per bad reason."""
    Partner.objects.create(company=acme, name="Old friend", email="friend@client.example")
    Partner.objects.create(company=acme, name="Spam hater", email="hater@client.example",
                           is_blacklisted=True)
    gone = Partner.objects.create(company=acme, name="Gone", email="gone@client.example")
    services.unsubscribe(services.subscribe(newsletter, gone, actor=mia), actor=mia)
    return csv_bytes([
        ["Email", "Name", "Company", "Country", "Language", "Tags"],
        ["New.Person@Client.Example", "New Person", "Client SA", "France", "fr", "fair, vip"],
        ["friend@client.example", "Old friend", "", "", "", ""],
        ["not an address", "Broken", "", "", "", ""],
        ["new.person@client.example", "Again", "", "", "", ""],
        ["hater@client.example", "Hater", "", "", "", ""],
        ["gone@client.example", "Gone", "", "", "", ""],
        ["", "", "", "", "", ""],  # blank rows are skipped, not counted
    ])


def test_preview_counts_good_and_bad_rows(newsletter, mixed_file):
    preview = imports.preview(mixed_file, "csv", True, imports.guess_mapping(
        next(imports.read_rows(mixed_file, "csv")), True), newsletter)
    assert (preview.good, preview.bad, preview.total) == (2, 4, 6)
    assert preview.by_reason == {Reason.INVALID: 1, Reason.DUPLICATE: 1,
                                 Reason.SUPPRESSED: 1, Reason.UNSUBSCRIBED: 1}
    assert [row.line for row in preview.rows] == [2, 3, 4, 5, 6, 7]
    assert preview.rows[3].message == "Same address as line 2."


def test_import_subscribes_the_good_rows_and_lists_the_bad_ones(acme, newsletter, mia,
                                                                mixed_file):
    job = start(newsletter, mia, mixed_file)
    job = run()
    assert job.state == ImportJob.State.DONE
    assert (job.total, job.done, job.created, job.updated, job.bad, job.contacts_created) == (
        6, 6, 2, 0, 4, 1)
    new = Subscription.objects.get(mailing_list=newsletter, email="new.person@client.example")
    assert new.status == Subscription.Status.SUBSCRIBED
    assert new.source == Subscription.Source.IMPORT
    assert new.consent_how.startswith("Trade fair 2026")
    person = new.partner
    assert person.name == "New Person" and str(person.country) == "FR"
    assert person.language == "fr_FR" and person.parent.name == "Client SA"
    assert sorted(tag.name for tag in person.tags.all()) == ["fair", "vip"]
    reasons = dict(job.bad_rows.values_list("row", "reason"))
    assert reasons == {4: Reason.INVALID, 5: Reason.DUPLICATE, 6: Reason.SUPPRESSED,
                       7: Reason.UNSUBSCRIBED}
    # an unsubscribed person is not subscribed again by an import
    gone = Subscription.objects.get(mailing_list=newsletter, email="gone@client.example")
    assert gone.status == Subscription.Status.UNSUBSCRIBED
    assert not Subscription.objects.filter(email="hater@client.example").exists()
    # a second import of the same file adds nobody twice
    start(newsletter, mia, mixed_file)
    again = run()
    assert (again.created, again.updated) == (0, 2)
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 3


def test_double_opt_in_list_imports_people_as_unconfirmed(acme, mia):
    from mailroom.campaigns.models import MailingList

    confirm = services.save_list(MailingList(company=acme, name="Opt-in", double_opt_in=True),
                                 actor=mia)
    start(confirm, mia, csv_bytes([["email"], ["ada@client.example"]]))
    run()
    assert Subscription.objects.get(mailing_list=confirm).status == "unconfirmed"


def big_file(rows: int) -> bytes:
    return csv_bytes([["email", "name"]] + [[f"person{i}@client.example", f"Person {i}"]
                                            for i in range(rows)])


def test_two_thousand_rows_go_through_the_worker_in_chunks(newsletter, mia):
    job = start(newsletter, mia, big_file(2000))
    assert tasks.contact_imports_step("w1") is True
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert (job.done, job.created, job.bad) == (2000, 2000, 0)
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 2000
    assert tasks.contact_imports_step("w1") is False  # nothing left


def test_progress_is_committed_after_each_chunk_and_a_crash_resumes_without_duplicates(
        newsletter, mia, settings):
    content = big_file(2500) + b"person7@client.example,Seven again\n"
    job = start(newsletter, mia, content)
    # one chunk, then the worker "dies" holding the lease
    job_id = tasks.claim("w1")
    tasks.process(job_id, "w1", max_chunks=1)
    job.refresh_from_db()
    assert job.state == ImportJob.State.RUNNING
    assert (job.done, job.created, job.total) == (1000, 1000, 2501)
    assert job.percent == 39
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 1000
    # the worker died holding the lease (whatever chunk it was on rolled back with it); once
    # the lease has run out another worker takes the import up from `done`
    ImportJob.objects.filter(pk=job_id).update(lease_owner="w1-dead",
                                               lease_expires_at="2000-01-01T00:00:00Z")
    assert tasks.contact_imports_step("w2") is True
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert (job.done, job.created, job.bad) == (2501, 2500, 1)
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 2500
    assert Partner.objects.filter(email__startswith="person").count() == 2500
    # the duplicate in the last row is caught though its twin was imported by the first worker
    bad = job.bad_rows.get()
    assert bad.reason == Reason.DUPLICATE and bad.message == "Same address as line 9."


def test_a_worker_that_lost_its_lease_writes_nothing(newsletter, mia):
    job = start(newsletter, mia, big_file(10))
    job_id = tasks.claim("w1")
    ImportJob.objects.filter(pk=job_id).update(lease_owner="w2")
    tasks.process(job_id, "w1")
    assert not Subscription.objects.exists()
    job.refresh_from_db()
    assert job.done == 0


def test_a_missing_file_fails_with_a_reason_and_retry_resumes(newsletter, mia, settings):
    from mailroom.core.blobs import attachment_path

    job = start(newsletter, mia, big_file(5))
    path = attachment_path(job.file_sha256)
    saved = path.read_bytes()
    path.unlink()
    job = run()
    assert job.state == ImportJob.State.FAILED
    assert "missing from the file store" in job.error
    path.write_bytes(saved)
    services.retry_import(job, actor=mia)
    job = run()
    assert job.state == ImportJob.State.DONE and job.created == 5


def test_someone_subscribed_between_two_chunks_counts_as_already_on_the_list(
        newsletter, mia, monkeypatch):
    """The chunk size is shrunk so 30 rows make three chunks."""
    monkeypatch.setattr(tasks, "CHUNK_SIZE", 10)
    rows = [["email", "name"]] + [[f"p{i}@client.example", f"P{i}"] for i in range(30)]
    job = start(newsletter, mia, csv_bytes(rows))
    job_id = tasks.claim("w1")
    tasks.process(job_id, "w1", max_chunks=2)
    job.refresh_from_db()
    assert job.done == 20
    # someone subscribes row 25's person by hand meanwhile: the import counts them as already
    # on the list instead of failing or subscribing twice
    person = Partner.objects.create(company=newsletter.company, name="P25",
                                    email="p25@client.example")
    services.subscribe(newsletter, person, actor=mia)
    assert tasks.contact_imports_step("w1") is True
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert (job.done, job.created, job.updated) == (30, 29, 1)
