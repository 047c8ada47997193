"""What `mailroom demo` seeds, as plain data (kept apart so the command reads as steps).

Every address uses the reserved `.example` top-level domain (RFC 2606): a demo can never
mail a real person, whatever a worker does with it.
"""

from __future__ import annotations

from decimal import Decimal

from mailroom.core.roles import Role

DEMO_COMPANY = {
    "name": "Mailroom Demo SA", "email": "hello@mailroom-demo.example",
    "phone": "+41 22 555 01 00", "website": "https://mailroom-demo.example",
    "street": "Rue du Rhône 42", "zip": "1204", "city": "Genève", "country": "CH",
    "primary_color": "#1f6feb", "secondary_color": "#0d1117", "currency": "CHF",
    "language": "en_GB", "timezone": "Europe/Zurich",
}
SECOND_COMPANY = {
    "name": "Northwind Ltd", "email": "office@northwind.example", "phone": "+44 20 5550 1234",
    "street": "12 Harbour Street", "zip": "EC1A 1BB", "city": "London", "country": "GB",
    "primary_color": "#b45309", "secondary_color": "#1c1917", "currency": "GBP",
    "language": "en_GB", "timezone": "Europe/London",
}

DEMO, NORTHWIND = "demo", "northwind"
# username, password, first name, last name, role, companies (first = current)
USERS = [
    ("admin", "admin-demo-1", "Alex", "Admin", Role.ADMINISTRATOR, [DEMO, NORTHWIND]),
    ("manager", "manager-demo-1", "Morgan", "Manager", Role.MAIL_MANAGER, [DEMO]),
    ("editor", "editor-demo-1", "Eden", "Editor", Role.TEMPLATE_EDITOR, [DEMO]),
    ("user", "user-demo-1", "Uma", "User", Role.USER, [DEMO]),
    ("northwind", "northwind-demo-1", "Nora", "Wind", Role.USER, [NORTHWIND]),
]

# name, email domain, city, country
ORGANISATIONS = [
    ("Brightwave Labs", "brightwave.example", "Lausanne", "CH"),
    ("Alpine Logistics", "alpinelog.example", "Zürich", "CH"),
    ("Café Lumière", "cafelumiere.example", "Lyon", "FR"),
    ("Nordlicht GmbH", "nordlicht.example", "Hamburg", "DE"),
    ("Oakridge Studio", "oakridge.example", "Bristol", "GB"),
    ("Sol y Mar Hoteles", "solymar.example", "Valencia", "ES"),
]
# name, organisation index (or None), email local part, phone, language
PEOPLE = [
    ("Lena Fischer", 0, "lena", "+41 21 555 10 01", "de_DE"),
    ("Marc Dubois", 0, "marc", "+41 21 555 10 02", "fr_FR"),
    ("Sara Keller", 1, "sara", "+41 44 555 20 01", "de_DE"),
    ("Tom Brunner", 1, "tom", "+41 44 555 20 02", "de_DE"),
    ("Claire Martin", 2, "claire", "+33 4 55 50 30 01", "fr_FR"),
    ("Jonas Weber", 3, "jonas", "+49 40 5550 4001", "de_DE"),
    ("Mia Schulz", 3, "mia", "+49 40 5550 4002", "de_DE"),
    ("Oliver Hughes", 4, "oliver", "+44 117 555 5001", "en_GB"),
    ("Priya Shah", 4, "priya", "+44 117 555 5002", "en_GB"),
    ("Lucía García", 5, "lucia", "+34 96 555 6001", "es_ES"),
    ("Pablo Ruiz", 5, "pablo", "+34 96 555 6002", "es_ES"),
    ("Hannah Moore", None, "hannah.moore@mailbox.example", "+1 415 555 0101", "en_US"),
    ("Kenji Tanaka", None, "kenji@tanaka.example", "+81 3 5550 0101", "ja_JP"),
    ("Giulia Romano", None, "giulia.romano@posta.example", "+39 02 5550 0101", "it_IT"),
]
NORTHWIND_CONTACTS = [
    ("Harbour Foods", "harbourfoods.example"),
    ("Ivy Chen", "ivy@chen.example"),
    ("Sam Carter", "sam@carter.example"),
]

TAXES = [("VAT 8.1%", Decimal("8.1")), ("VAT 2.6%", Decimal("2.6")),
         ("Eco fee 1%", Decimal("1"))]

# name, contact index, stage, expected revenue, probability
LEADS = [
    ("Website redesign", 0, "new", 18000, 10),
    ("Fleet tracking pilot", 2, "qualified", 42000, 30),
    ("Espresso machines for 3 cafés", 4, "proposition", 9500, 60),
    ("Warehouse scanners", 3, "won", 23000, 100),
    ("Hotel booking engine", 9, "proposition", 61000, 50),
    ("Brand refresh", 7, "qualified", 12000, 40),
    ("Newsletter platform", 8, "new", 4000, 10),
    ("ERP integration", 5, "lost", 75000, 0),
    ("Support retainer 2026", 1, "won", 14400, 100),
    ("Conference app", 11, "new", 8000, 10),
    ("Translation services", 12, "qualified", 6200, 35),
    ("Photo shoot", 13, "new", 2500, 20),
]
# subject, contact index, stage, priority, customer message
TICKETS = [
    ("Cannot reset my password", 0, "new", "2", "The reset link says it expired."),
    ("Invoice shows the wrong address", 2, "in_progress", "1", "Please use our new address."),
    ("Export to CSV is empty", 5, "in_progress", "2", "The file only has headers."),
    ("Feature request: dark mode", 7, "on_hold", "0", "Our team works late."),
    ("Login page very slow", 9, "solved", "3", "Takes over 20 seconds since Monday."),
    ("Add a second admin", 1, "solved", "1", "Marc needs admin rights too."),
    ("Emails land in spam", 4, "in_progress", "3", "Customers do not see our replies."),
    ("Wrong VAT rate on order", 3, "new", "2", "We were charged 8.1 % instead of 2.6 %."),
    ("How do I archive projects?", 11, "solved", "0", "Couldn't find it in the menu."),
    ("Duplicate contacts after import", 8, "new", "1", "Each contact appears twice."),
    ("Cancel my subscription", 12, "cancelled", "0", "We are closing the office."),
    ("API returns 500 on /leads", 6, "on_hold", "2", "Only with a page size over 100."),
]
JOBS = ["Support Engineer", "Account Executive", "Python Developer"]
# name, job index, stage, expected salary
APPLICANTS = [
    ("Noah Becker", 0, "new", 68000), ("Emma Rossi", 0, "screening", 72000),
    ("Liam O'Brien", 0, "interview", 70000), ("Chloé Laurent", 1, "new", 85000),
    ("Mateo Silva", 1, "contract_proposal", 90000), ("Ava Johnson", 1, "refused", 110000),
    ("Yuki Sato", 2, "interview", 105000), ("Felix Wagner", 2, "hired", 98000),
    ("Zoe Evans", 2, "screening", 95000), ("Amir Haddad", 2, "new", 100000),
    ("Ines Costa", 0, "refused", 65000), ("Leo Novak", 1, "screening", 88000),
]
# name, customer contact index, alias
PROJECTS = [("Brightwave website", 0, "brightwave"), ("Internal tooling", None, "tooling")]
# title, project index, stage, priority, days until deadline
TASKS = [
    ("Wireframes for the home page", 0, "done", "0", -10),
    ("Pick a colour palette", 0, "done", "0", -7),
    ("Build the CMS templates", 0, "in_progress", "1", 5),
    ("Write launch copy", 0, "todo", "0", 12),
    ("Set up analytics", 0, "todo", "0", 20),
    ("Migrate blog posts", 0, "todo", "1", 25),
    ("Upgrade the CI runners", 1, "in_progress", "1", 2),
    ("Rotate API keys", 1, "todo", "1", -2),
    ("Backup restore drill", 1, "todo", "0", 14),
    ("Clean up old branches", 1, "cancelled", "0", None),
    ("Document the release process", 1, "done", "0", -20),
    ("Monitor disk usage", 1, "todo", "0", 30),
]
# description, unit price, tax indexes
CATALOGUE = [
    ("Consulting (day)", Decimal("1200"), [0]), ("Support plan (month)", Decimal("350"), [0]),
    ("Training session", Decimal("900"), [0, 2]), ("Printed manuals", Decimal("24.50"), [1]),
    ("Hosting (month)", Decimal("49.90"), [0]), ("Licence (seat)", Decimal("180"), [0]),
]
# contact index, days ago, target state, lines as (catalogue index, quantity, discount)
QUOTATIONS = [
    (0, 40, "sale", [(0, 5, 0), (2, 2, 10)]), (2, 35, "sale", [(1, 12, 5), (4, 12, 0)]),
    (4, 30, "sale", [(5, 10, 15), (3, 10, 0)]), (3, 25, "sale", [(0, 3, 0)]),
    (7, 20, "sale", [(2, 1, 0), (3, 20, 0)]), (9, 18, "sent", [(0, 8, 10), (1, 6, 0)]),
    (8, 15, "sent", [(5, 25, 20)]), (5, 12, "draft", [(4, 24, 0), (1, 12, 10)]),
    (11, 9, "draft", [(2, 3, 0)]), (12, 6, "cancel", [(0, 2, 0)]),
    (13, 3, "draft", [(3, 5, 0), (4, 6, 0)]), (1, 1, "sale", [(1, 12, 0)]),
]
# quotation indexes to invoice (sales orders) and what happens to each invoice
INVOICED = [(0, "paid"), (1, "paid"), (2, "partial"), (3, "posted"), (4, "draft"),
            (11, "posted")]
# direct invoices: contact index, days ago, lines, outcome
DIRECT_INVOICES = [
    (6, 50, [(1, 3, 0)], "paid"), (10, 45, [(0, 1, 0), (3, 4, 0)], "posted"),
    (11, 10, [(4, 12, 0)], "draft"), (0, 60, [(2, 1, 0)], "cancel"),
    (2, 8, [(5, 4, 0)], "partial"), (7, 70, [(0, 2, 5)], "posted"),
]

# the domain the demo company receives on (aliases: sales@, support@, jobs@, tasks@…)
DEMO_DOMAIN = "mailroom-demo.example"

# received messages routed by `mailroom demo`: (from, to, subject, extra headers, body)
INBOUND = (
    ("Grace Hopper <grace@navy.example>", f"sales@{DEMO_DOMAIN}",
     "Quote for 40 seats", ["Message-ID: <demo-1@navy.example>"],
     "Hello,\n\nWe would like a quote for 40 seats, billed yearly.\n\nGrace"),
    ("Linus Example <linus@kernel.example>", f"support@{DEMO_DOMAIN}",
     "Cannot log in since this morning", ["Message-ID: <demo-2@kernel.example>"],
     "Hi, the login page says my password is wrong, but it is not."),
    ("Grace Hopper <grace@navy.example>", f"sales@{DEMO_DOMAIN}",
     "Automatic reply: Quote for 40 seats",
     ["Message-ID: <demo-3@navy.example>", "Auto-Submitted: auto-replied"],
     "I am out of the office until Monday."),
    ("Mallory <mallory@spam.example>", f"nobody@{DEMO_DOMAIN}",
     "You won!", ["Message-ID: <demo-4@spam.example>"], "Click here."),
)
