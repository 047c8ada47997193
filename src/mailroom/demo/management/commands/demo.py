"""`mailroom demo`: seed a demo company, its users, contacts, records and chatter history.

Everything is written through the same services the screens and the API use, so the demo
exercises (and shows) the real rules: references, totals, tracking lines, company isolation.
A second company, Northwind Ltd, holds a few rows that the demo company's users never see.

Safe to run again: with the demo company present it does nothing, and `--if-empty` (used by
`scripts/run`) does nothing as soon as any company exists. All of it is one transaction, so a
failure leaves no half-seeded database.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from mailroom.business.crm.models import Lead
from mailroom.business.helpdesk import services as helpdesk_services
from mailroom.business.helpdesk.models import Ticket
from mailroom.business.helpdesk.services import save_ticket
from mailroom.business.invoicing import services as invoicing_services
from mailroom.business.invoicing.models import Invoice
from mailroom.business.projects import services as project_services
from mailroom.business.projects.models import Project, Task
from mailroom.business.recruitment import services as recruitment_services
from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.business.sales import services as sales_services
from mailroom.business.sales.models import Quotation, Tax
from mailroom.business.sales.services import save_tax
from mailroom.chatter.models import Message
from mailroom.chatter.services import follow, log_note, post_message, save_record
from mailroom.contacts.models import Partner
from mailroom.contacts.services import save_partner
from mailroom.core import kpis
from mailroom.core.models import Company, User
from mailroom.core.roles import sync_role_groups
from mailroom.core.services import save_company, save_user
from mailroom.demo import data
from mailroom.demo.campaigns_seed import seed_campaigns
from mailroom.demo.services import create_demo_server
from mailroom.digests.models import Digest
from mailroom.digests.sending import send_now
from mailroom.digests.services import save_digest
from mailroom.incoming.router import route
from mailroom.incoming.services import accept
from mailroom.routing.models import AliasDomain, AllowedSender
from mailroom.routing.services import (
    ensure_default_aliases,
    save_alias_domain,
    save_allowed_sender,
)


class Command(BaseCommand):
    help = "Seed a demo company with users, contacts, records and chatter history."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing if any company exists (first start).")

    def handle(self, *args, **options):
        if options["if_empty"] and Company.objects.exists():
            self.stdout.write("Companies exist already; no demo data added.")
            return
        if Company.objects.filter(name=data.DEMO_COMPANY["name"]).exists():
            self.stdout.write(f"{data.DEMO_COMPANY['name']} exists already; nothing to do.")
            return
        with transaction.atomic():
            created = Seeder().run()
        self.print_users(created)

    def print_users(self, created: list[tuple[str, str, str, str]]) -> None:
        rows = [("user", "password", "role", "companies"), *created]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        line = "  ".join("-" * w for w in widths)
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Sign in at "
                                             f"{settings.BASE_URL}/ with:"))
        for index, row in enumerate(rows):
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
            if index == 0:
                self.stdout.write(line)
        self.stdout.write("These passwords are public: change them before real use.")


def ascii_local_part(name: str) -> str:
    """ "Chloé O'Brien" → "chloe.obrien": plain ASCII, so every mail client shows it."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(part for part in folded.lower().replace("'", "").split())


class Seeder:
    """The seeding steps, in dependency order; each step uses the services only."""

    def __init__(self) -> None:
        self.today = timezone.localdate()
        self.now = timezone.now()

    def run(self) -> list[tuple[str, str, str, str]]:
        sync_role_groups()  # the role groups exist after migrate; make sure anyway
        self.companies = self.seed_companies()
        self.demo = self.companies[data.DEMO]
        created = self.seed_users()
        self.admin = self.users["admin"]
        self.seed_contacts()
        self.seed_taxes()
        self.seed_leads()
        self.seed_tickets()
        self.seed_recruitment()
        self.seed_mail_routing()
        self.seed_outgoing_server()
        self.seed_projects()
        self.seed_quotations()
        self.seed_invoices()
        self.seed_northwind()
        self.seed_inbound()
        self.seed_digests()
        seed_campaigns(self.demo, self.users["manager"])
        return created

    def ago(self, days: int):
        return self.now - timedelta(days=days)

    def seed_companies(self) -> dict:
        return {key: save_company(Company(**fields), actor=None)
                for key, fields in ((data.DEMO, data.DEMO_COMPANY),
                                    (data.NORTHWIND, data.SECOND_COMPANY))}

    def seed_users(self) -> list[tuple[str, str, str, str]]:
        self.users: dict[str, User] = {}
        created = []
        for username, password, first, last, role, company_keys in data.USERS:
            companies = [self.companies[key] for key in company_keys]
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, first_name=first, last_name=last,
                            email=f"{username}@mailroom-demo.example",
                            current_company=companies[0])
                user.set_password(password)
                shown = password
            else:  # an operator's own account keeps its password
                shown = "(unchanged: user existed)"
                companies = list({*user.companies.all(), *companies})
            save_user(user, actor=None, companies=companies, roles=[role])
            self.users[username] = user
            created.append((username, shown, role.value,
                            ", ".join(c.name for c in companies)))
        return created

    def seed_contacts(self) -> None:
        organisations = []
        for name, domain, city, country in data.ORGANISATIONS:
            organisations.append(save_partner(Partner(
                company=self.demo, kind=Partner.Kind.ORGANISATION, name=name,
                email=f"info@{domain}", city=city, country=country,
            ), actor=self.admin))
        self.contacts = []
        for name, org_index, email, phone, language in data.PEOPLE:
            parent = organisations[org_index] if org_index is not None else None
            if "@" not in email:
                email = f"{email}@{data.ORGANISATIONS[org_index][1]}"
            self.contacts.append(save_partner(Partner(
                company=self.demo, name=name, parent=parent, email=email, phone=phone,
                language=language, city=parent.city if parent else "",
                country=parent.country if parent else "",
            ), actor=self.admin))
        self.organisations = organisations

    def seed_taxes(self) -> None:
        self.taxes = [save_tax(Tax(company=self.demo, name=name, percent=percent),
                               actor=self.admin) for name, percent in data.TAXES]

    def chatter(self, record, contact, *, customer_text: str = "", reply: str = "",
                note: str = "", days: int = 0, author=None) -> None:
        """A small conversation: the customer writes, the team replies and notes."""
        author = author or self.users["user"]
        if contact is not None:
            follow(record, contact, actor=author)
        if customer_text and contact is not None:
            post_message(record, actor=None, author_partner=contact,
                         email_from=contact.email_formatted, body_text=customer_text,
                         message_type=Message.Type.EMAIL, direction=Message.Direction.INCOMING,
                         subject=str(record), notify=False, date=self.ago(days))
        if reply:
            post_message(record, actor=author, body_text=reply, notify=False,
                         date=self.ago(max(days - 1, 0)))
        if note:
            log_note(record, actor=author, body_text=note)

    def seed_leads(self) -> None:
        sales = [self.users["admin"], self.users["user"]]
        for index, (name, contact_i, stage, revenue, probability) in enumerate(data.LEADS):
            contact = self.contacts[contact_i]
            lead = save_record(Lead(
                company=self.demo, name=name, partner=contact, email_from=contact.email,
                phone=contact.phone, user=sales[index % 2], expected_revenue=Decimal(revenue),
                probability=10, created_at=self.ago(30 - index * 2),
            ), actor=sales[index % 2])
            if stage != "new":  # a real move, so the chatter shows "Stage: New → …"
                lead.stage, lead.probability = stage, probability
                save_record(lead, actor=sales[index % 2])
            if index % 3 == 0:
                self.chatter(lead, contact, customer_text=f"We'd like to talk about {name}.",
                             reply="Thanks! I'll send a proposal this week.",
                             note="Budget confirmed on the phone.", days=20 - index,
                             author=sales[index % 2])

    def seed_tickets(self) -> None:
        agents = [self.users["user"], self.users["manager"], None]
        for index, (subject, contact_i, stage, priority, text) in enumerate(data.TICKETS):
            contact = self.contacts[contact_i]
            agent = agents[index % 3]
            ticket = helpdesk_services.save_ticket(Ticket(
                company=self.demo, name=subject, partner=contact, priority=priority,
                description=text, user=agent, created_at=self.ago(14 - index),
            ), actor=self.admin)
            self.chatter(ticket, contact, customer_text=text, days=14 - index,
                         reply="Thanks for reporting this, we are looking into it."
                         if stage != "new" else "", author=agent or self.admin)
            if stage != "new":
                helpdesk_services.set_stage(ticket, stage, actor=agent or self.admin)

    def seed_recruitment(self) -> None:
        jobs = [recruitment_services.save_job_position(JobPosition(
            company=self.demo, name=name, user=self.users["manager"],
            description=f"We are hiring a {name} in Geneva.",
        ), actor=self.admin) for name in data.JOBS]
        for index, (name, job_i, stage, salary) in enumerate(data.APPLICANTS):
            email = ascii_local_part(name)
            applicant = recruitment_services.save_applicant(Applicant(
                company=self.demo, partner_name=name, email=f"{email}@mail.example",
                job=jobs[job_i], user=self.users["manager"], salary_expected=Decimal(salary),
                created_at=self.ago(25 - index),
            ), actor=self.users["manager"])
            if stage != "new":
                recruitment_services.set_stage(applicant, stage, actor=self.users["manager"])
            if index % 4 == 0:
                self.chatter(applicant, None, reply="Invited for a first call.",
                             note="Strong portfolio.", author=self.users["manager"])

    def seed_mail_routing(self) -> None:
        """The demo company receives on its own domain: sales@, support@, jobs@, tasks@…"""
        domain = save_alias_domain(AliasDomain(company=self.demo, name=data.DEMO_DOMAIN),
                                   actor=None)
        ensure_default_aliases(domain)
        save_allowed_sender(AllowedSender(company=self.demo, pattern="monitoring.example",
                                          note="Uptime alerts: many messages, all wanted"),
                            actor=None)

    def seed_outgoing_server(self) -> None:
        """Mail the demo sends goes to the local mail catcher: readable under Email › Caught
        mail, delivered to nobody."""
        create_demo_server(self.demo)

    def seed_inbound(self) -> None:
        """A few received messages routed for real, so the inbound log tells its stories."""
        for sender, to, subject, extra, body in data.INBOUND:
            lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", *extra,
                     "Content-Type: text/plain; charset=utf-8", "", body, ""]
            raw = "\r\n".join(lines).encode()
            route(accept(raw, company=self.demo, source="api", envelope_to=[to]))

    def seed_projects(self) -> None:
        projects = [project_services.save_project(Project(
            company=self.demo, name=name, user=self.admin, alias_name=alias,
            partner=self.organisations[contact_i] if contact_i is not None else None,
        ), actor=self.admin) for name, contact_i, alias in data.PROJECTS]
        people = [self.users["user"], self.users["admin"], self.users["editor"]]
        for index, (title, project_i, stage, priority, due) in enumerate(data.TASKS):
            task = project_services.save_task(Task(
                company=self.demo, name=title, project=projects[project_i],
                user=people[index % 3], priority=priority,
                deadline=self.today + timedelta(days=due) if due is not None else None,
                created_at=self.ago(30 - index),
            ), actor=self.admin)
            if stage != "todo":
                project_services.set_stage(task, stage, actor=people[index % 3])
            if index % 4 == 1:
                self.chatter(task, None, reply="Draft is in the shared folder.",
                             note="Check with the customer before Friday.",
                             author=people[index % 3])

    def _lines(self, specs) -> list[dict]:
        lines = []
        for catalogue_i, quantity, discount in specs:
            description, price, tax_indexes = data.CATALOGUE[catalogue_i]
            lines.append({"description": description, "quantity": Decimal(quantity),
                          "price_unit": price, "discount": Decimal(discount),
                          "tax_ids": [self.taxes[i].pk for i in tax_indexes]})
        return lines

    def seed_quotations(self) -> None:
        self.quotations = []
        for contact_i, days, state, specs in data.QUOTATIONS:
            contact = self.contacts[contact_i]
            date = self.today - timedelta(days=days)
            quotation = sales_services.save_quotation(Quotation(
                company=self.demo, partner=contact, user=self.admin, date=date,
                validity_date=date + timedelta(days=30), created_at=self.ago(days),
                note="Payment within 30 days. Prices in CHF.",
            ), actor=self.admin)
            sales_services.set_lines(quotation, self._lines(specs), actor=self.admin)
            if state in ("sent", "sale"):
                sales_services.mark_quotation_sent(quotation, actor=self.admin)
            if state == "sale":
                sales_services.confirm_quotation(quotation, actor=self.admin)
                self.chatter(quotation, contact, customer_text="Signed copy attached. Thanks!",
                             days=max(days - 2, 0), author=self.admin)
            if state == "cancel":
                sales_services.cancel_quotation(quotation, actor=self.admin)
            self.quotations.append(quotation)

    def _settle(self, invoice, outcome: str) -> None:
        if outcome == "draft":
            return
        invoicing_services.post_invoice(invoice, actor=self.admin)
        if outcome == "paid":
            invoicing_services.pay_in_full(invoice, actor=self.admin)
        elif outcome == "partial":
            half = (invoice.amount_total / 2).quantize(Decimal("0.01"))
            invoicing_services.register_payment(invoice, half, actor=self.admin,
                                                memo="First instalment.")
        elif outcome == "cancel":
            invoicing_services.cancel_invoice(invoice, actor=self.admin)

    def seed_invoices(self) -> None:
        """Invoices in date order, so their numbers run with their dates as in real books."""
        planned = []
        for quotation_i, outcome in data.INVOICED:
            order = self.quotations[quotation_i]
            invoice_date = min(order.date + timedelta(days=2), self.today)
            planned.append((invoice_date, order, None, outcome))
        for contact_i, days, specs, outcome in data.DIRECT_INVOICES:
            planned.append((self.today - timedelta(days=days), None, (contact_i, specs),
                            outcome))
        planned.sort(key=lambda item: item[0])
        for invoice_date, order, direct, outcome in planned:
            self._settle(self._invoice(invoice_date, order, direct), outcome)

    def _invoice(self, invoice_date, order, direct):
        if order is not None:
            return invoicing_services.create_invoice_from_quotation(
                order, actor=self.admin, invoice_date=invoice_date)
        contact_i, specs = direct
        invoice = invoicing_services.save_invoice(Invoice(
            company=self.demo, partner=self.contacts[contact_i], user=self.admin,
            invoice_date=invoice_date, created_at=self.ago((self.today - invoice_date).days),
        ), actor=self.admin)
        return invoicing_services.set_lines(invoice, self._lines(specs), actor=self.admin)

    def seed_digests(self) -> None:
        """A weekly digest of every KPI for the team, a daily one for support, and one
        weekly digest sent now to the administrator, so Caught mail shows what it looks
        like on the first start."""
        keys = [kpi.key for kpi in kpis.registered()]
        weekly = save_digest(Digest(company=self.demo, name="Weekly pulse",
                                    periodicity="weekly", kpis=keys),
                             actor=None, recipients=[self.users[name] for name in
                                                     ("admin", "manager", "editor", "user")])
        support = [k for k in keys if k.startswith(("helpdesk.", "incoming.", "outgoing."))]
        save_digest(Digest(company=self.demo, name="Support daily", periodicity="daily",
                           kpis=support or keys[:4]),
                    actor=None, recipients=[self.users["user"], self.users["manager"]])
        send_now(weekly, actor=self.admin)

    def seed_northwind(self) -> None:
        """A few rows in the second company: the demo company's users never see them."""
        company = self.companies[data.NORTHWIND]
        nora = self.users["northwind"]
        contacts = []
        for name, email in data.NORTHWIND_CONTACTS:
            kind = Partner.Kind.PERSON if "@" in email else Partner.Kind.ORGANISATION
            contacts.append(save_partner(Partner(
                company=company, name=name, kind=kind,
                email=email if "@" in email else f"orders@{email}",
            ), actor=nora))
        save_record(Lead(company=company, name="Cold-chain monitoring", partner=contacts[0],
                         user=nora, expected_revenue=Decimal(27000)), actor=nora)
        ticket = save_ticket(Ticket(company=company, name="Delivery notes missing",
                                    partner=contacts[1], user=nora), actor=nora)
        self.chatter(ticket, contacts[1], customer_text="The last two deliveries had none.",
                     reply="Sorry about that, resending now.", author=nora)
