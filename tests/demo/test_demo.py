"""`mailroom demo` seeds a usable company through the services, once."""

import io

import pytest
from django.core.management import call_command

from mailroom.business.crm.models import Lead
from mailroom.business.helpdesk.models import Ticket
from mailroom.business.invoicing.models import Invoice
from mailroom.business.projects.models import Project, Task
from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.business.sales.models import Quotation, Tax
from mailroom.chatter.models import Follower, Message, TrackingValue
from mailroom.contacts.models import Partner
from mailroom.core.models import Company, User
from mailroom.core.roles import Role

MODELS = (Company, User, Partner, Lead, Ticket, Applicant, JobPosition, Project, Task,
          Quotation, Tax, Invoice, Message, Follower, TrackingValue)


@pytest.fixture
def seeded(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_demo_seeds_every_record_type(seeded):
    demo = Company.objects.get(name="Mailroom Demo SA")
    assert demo.street and demo.city and demo.primary_color and demo.secondary_color
    assert Company.objects.filter(name="Northwind Ltd").exists()
    assert Partner.objects.filter(company=demo).count() >= 20
    for model in (Lead, Ticket, Applicant, Task, Quotation, Invoice):
        assert model.objects.filter(company=demo).count() >= 12, model
    assert Project.objects.filter(company=demo).count() == 2
    assert Quotation.objects.filter(state="sale").exists()
    assert Invoice.objects.filter(payment_state="paid").exists()
    assert Invoice.objects.filter(payment_state="partial").exists()
    assert all(q.amount_total == q.amount_untaxed + q.amount_tax
               for q in Quotation.objects.all())
    assert Message.objects.filter(message_type="note").exists()
    assert Message.objects.filter(message_type="email", direction="in").exists()
    assert TrackingValue.objects.filter(field="stage").exists()
    assert Follower.objects.exists()


def test_demo_prints_the_sign_in_table_with_working_passwords(seeded):
    assert "admin-demo-1" in seeded
    for username in ("admin", "manager", "editor", "user", "northwind"):
        assert username in seeded
    admin = User.objects.get(username="admin")
    assert admin.check_password("admin-demo-1")
    assert admin.has_role(Role.ADMINISTRATOR)
    assert not admin.is_superuser  # so the company switcher and isolation are real


def test_second_company_is_isolated(seeded):
    user = User.objects.get(username="user")
    nora = User.objects.get(username="northwind")
    northwind = Company.objects.get(name="Northwind Ltd")
    assert not Ticket.objects.for_user(user).filter(company=northwind).exists()
    assert set(Ticket.objects.for_user(nora).values_list("company", flat=True)) == {
        northwind.pk}
    assert Lead.objects.for_user(nora).count() == 1


def test_second_run_is_a_no_op(seeded):
    before = counts()
    out = io.StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "no demo data" in out.getvalue()
    call_command("demo", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert counts() == before


def test_if_empty_skips_when_any_company_exists(acme):
    call_command("demo", "--if-empty", stdout=io.StringIO())
    assert list(Company.objects.values_list("name", flat=True)) == ["Acme Corp"]


def test_demo_keeps_an_existing_operator_password(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("admin", password="operator-secret", is_staff=True)
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert User.objects.get(username="admin").check_password("operator-secret")
    assert "unchanged" in out.getvalue()


ADMIN_PAGES = ["helpdesk/ticket", "recruitment/applicant", "recruitment/jobposition",
               "projects/project", "projects/task", "sales/quotation", "sales/tax",
               "invoicing/invoice", "crm/lead"]


def test_back_office_shows_the_demo(seeded, client):
    """Lists (with a search), record pages and the sidebar groups of every record app."""
    from django.apps import apps

    client.force_login(User.objects.get(username="admin"))
    for page in ADMIN_PAGES:
        assert client.get(f"/{page}/?q=a").status_code == 200, page
        model = apps.get_model(page.replace("/", "."))
        record = model.objects.filter(company__name="Mailroom Demo SA").first()
        assert client.get(f"/{page}/{record.pk}/change/").status_code == 200, page
    home = client.get("/").content.decode()
    for title in ("Quotations", "Taxes", "Tickets", "Applicants", "Job positions", "Projects",
                  "Tasks", "Invoices"):
        assert title in home


def test_demo_company_sends_through_the_mail_catcher(seeded, catcher_address):
    from mailroom.outgoing.models import MailServer

    demo = Company.objects.get(name="Mailroom Demo SA")
    server = MailServer.objects.get(company=demo)
    assert server.name == "Demo: nothing leaves this machine"
    assert f"{server.host}:{server.port}" == catcher_address
    assert server.security == "none" and server.active
    # the seeder tested it against a catcher it started for the moment: bulk mail may use it
    assert server.test_status == "ok" and server.purpose == "both"


def test_demo_seeds_digests_and_sends_the_weekly_one_to_the_administrator(seeded):
    from mailroom.digests.models import Digest, DigestSend
    from mailroom.digests.services import recipients

    weekly = Digest.objects.get(name="Weekly pulse")
    assert weekly.active and weekly.next_run_at is not None and len(weekly.kpis) >= 10
    assert recipients(weekly).count() == 4
    assert Digest.objects.filter(name="Support daily", periodicity="daily").exists()
    send = DigestSend.objects.get(digest=weekly)
    assert (send.kind, send.user.username) == ("manual", "admin")
    assert send.mail.subject.startswith("Weekly pulse")
