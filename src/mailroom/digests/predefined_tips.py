"""The tips Mailroom ships: short, concrete advice about Mailroom itself, each with a link to
the back-office page where the advice is put to work (relative links: the email makes them
absolute and signs them).

Each has a `key`, so an upgrade can rewrite the text of the shipped tips (`install`) without
touching what a company changed: whether it is switched on, and its sequence. Company is empty:
every company's users get them, filtered by role and record type as any tip.

Migration 0002_predefined_tips calls `install` with its historical models; to ship new or
changed texts later, edit TIPS and add a data migration that calls `install` again. `install`
may only use fields the historical models have (those of 0001_initial and later).
"""

from __future__ import annotations

MAIL_MANAGER = "Mail Manager"
TEMPLATE_EDITOR = "Template Editor"

TIPS: list[dict] = [
    {
        "key": "mailroom-dkim",
        "sequence": 10,
        "roles": [MAIL_MANAGER],
        "record_types": [],
        "title": "Sign your mail with DKIM",
        "body": (
            "<p>Mail signed with DKIM for your own domain lands in the inbox, not in spam: "
            "Gmail and Outlook now refuse much unsigned bulk mail.</p>"
            "<p>Open <a href=\"/outgoing/dkimkey/\">DKIM keys</a>, add a key for your domain, "
            "and publish the TXT record it shows at <code>mailroom._domainkey.</code> your "
            "domain with your DNS provider. Mailroom signs every message sent from that "
            "domain from then on.</p>"),
        "translations": {
            "fr_FR": (
                "Signez vos e-mails avec DKIM",
                "<p>Un e-mail signé DKIM pour votre propre domaine arrive dans la boîte de "
                "réception, pas dans les indésirables : Gmail et Outlook refusent désormais "
                "beaucoup d'envois non signés.</p>"
                "<p>Ouvrez <a href=\"/outgoing/dkimkey/\">Clés DKIM</a>, ajoutez une clé pour "
                "votre domaine et publiez l'enregistrement TXT affiché sous "
                "<code>mailroom._domainkey.</code> votre domaine chez votre fournisseur DNS. "
                "Mailroom signe ensuite chaque message envoyé depuis ce domaine.</p>"),
        },
    },
    {
        "key": "mailroom-aliases",
        "sequence": 20,
        "roles": [MAIL_MANAGER],
        "record_types": [],
        "title": "Turn incoming mail into records with aliases",
        "body": (
            "<p>An alias such as <code>support@</code> or <code>jobs@</code> turns every "
            "email it receives into a record — a ticket, an applicant, a lead — with the "
            "message in its history and the sender as a contact. Replies land on the same "
            "record.</p>"
            "<p>Create one in <a href=\"/routing/alias/\">Aliases</a>, choose what it creates "
            "and who may write to it, then check where an address leads with "
            "<a href=\"/incoming/test-address/\">Test an address</a>.</p>"),
        "translations": {
            "fr_FR": (
                "Transformez les e-mails reçus en fiches avec les alias",
                "<p>Un alias comme <code>support@</code> ou <code>jobs@</code> transforme "
                "chaque e-mail reçu en fiche — ticket, candidat, piste — avec le message dans "
                "son historique et l'expéditeur comme contact. Les réponses arrivent sur la "
                "même fiche.</p>"
                "<p>Créez-en un dans <a href=\"/routing/alias/\">Alias</a>, choisissez ce "
                "qu'il crée et qui peut lui écrire, puis vérifiez où mène une adresse avec "
                "<a href=\"/incoming/test-address/\">Test an address</a>.</p>"),
        },
    },
    {
        "key": "mailroom-email-hub",
        "sequence": 30,
        "roles": [],
        "record_types": [],
        "title": "Why was an email not sent? Ask the email hub",
        "body": (
            "<p>{{ user.first_name }}, every email {{ company.name }} sends is in the "
            "<a href=\"/outgoing/outgoingmail/\">Email hub</a>. The <em>Why not sent</em> "
            "column says in plain words what went wrong — a refused address, a server that "
            "did not answer — and whether Mailroom will try again on its own.</p>"
            "<p>Temporary failures are retried on their own — after a minute, then at "
            "doubling intervals (at most an hour apart) for four days. Once the cause is "
            "fixed, a Mail Manager can select the mails and use <em>Retry</em>.</p>"),
        "translations": {
            "fr_FR": (
                "Un e-mail n'est pas parti ? Le hub e-mail vous dit pourquoi",
                "<p>{{ user.first_name }}, chaque e-mail envoyé par {{ company.name }} est dans "
                "le <a href=\"/outgoing/outgoingmail/\">hub e-mail</a>. La colonne "
                "<em>Why not sent</em> explique simplement ce qui a échoué — adresse refusée, "
                "serveur muet — et si Mailroom va réessayer de lui-même.</p>"
                "<p>Les échecs temporaires sont réessayés automatiquement, à intervalles "
                "croissants ; une fois la cause corrigée, un Mail Manager peut sélectionner "
                "les e-mails et utiliser <em>Retry</em>.</p>"),
        },
    },
    {
        "key": "mailroom-allowed-senders",
        "sequence": 40,
        "roles": [MAIL_MANAGER],
        "record_types": [],
        "title": "Let trusted partners write to your aliases",
        "body": (
            "<p>An alias open only to known contacts refuses mail from a new address at a "
            "partner you trust. Rather than opening the alias to everyone, add the address "
            "or the whole domain (<code>partner.com</code>) to "
            "<a href=\"/routing/allowedsender/\">Allowed senders</a> — for one alias, one "
            "alias domain, or the whole company.</p>"),
        "translations": {},
    },
    {
        "key": "mailroom-template-translations",
        "sequence": 50,
        "roles": [TEMPLATE_EDITOR],
        "record_types": [],
        "title": "Write each template once, in every language",
        "body": (
            "<p>An <a href=\"/templating/emailtemplate/\">email template</a> can carry a "
            "translation per language. Mailroom picks the one in the customer's language "
            "(or the nearest: British English for an American customer) and formats dates, "
            "numbers and amounts the way they read them.</p>"
            "<p>Open a template, add translations at the bottom, and use "
            "<em>Preview</em> to read it as a given customer would.</p>"),
        "translations": {
            "fr_FR": (
                "Un modèle, toutes les langues",
                "<p>Un <a href=\"/templating/emailtemplate/\">modèle d'e-mail</a> peut avoir "
                "une traduction par langue. Mailroom choisit celle de la langue du client (ou "
                "la plus proche) et formate dates, nombres et montants comme il les lit.</p>"
                "<p>Ouvrez un modèle, ajoutez des traductions en bas, et utilisez "
                "<em>Aperçu</em> pour le lire comme le lira un client donné.</p>"),
        },
    },
    {
        "key": "mailroom-follow-inbox",
        "sequence": 60,
        "roles": [],
        "record_types": [],
        "title": "Follow a record, and let the bell tell you",
        "body": (
            "<p>Press <em>Follow</em> in the chatter of a lead, ticket or invoice: every new "
            "message and every mention of you arrives in your "
            "<a href=\"/chatter/inbox/\">Inbox</a>, and the bell at the top shows how many "
            "are unread.</p>"
            "<p>Too much mail? In <a href=\"/company/preferences/\">My preferences</a>, "
            "choose <em>In Mailroom only</em>: the Inbox keeps everything, your mailbox "
            "stays quiet.</p>"),
        "translations": {
            "fr_FR": (
                "Suivez une fiche, la cloche vous prévient",
                "<p>Cliquez sur <em>Suivre</em> dans le fil d'une piste, d'un ticket ou d'une "
                "facture : chaque nouveau message et chaque mention de votre nom arrivent "
                "dans votre <a href=\"/chatter/inbox/\">boîte de réception</a>, et la cloche "
                "en haut indique combien sont non lus.</p>"
                "<p>Trop d'e-mails ? Dans <a href=\"/company/preferences/\">Mes préférences"
                "</a>, choisissez <em>Dans Mailroom uniquement</em>.</p>"),
        },
    },
    {
        "key": "mailroom-activities",
        "sequence": 70,
        "roles": [],
        "record_types": [],
        "title": "Plan the next step with an activity — or ask for an approval",
        "body": (
            "<p>On any record, schedule an activity (a call, a to-do, a meeting) with a due "
            "date and a person: it shows in their "
            "<a href=\"/activities/activity/\">My activities</a> and they get a reminder "
            "when it is due.</p>"
            "<p>Choose the <em>Approval</em> type to ask someone to approve or refuse: they "
            "can decide from the email, in one click, without signing in.</p>"),
        "translations": {
            "fr_FR": (
                "Planifiez la suite avec une activité — ou demandez une validation",
                "<p>Sur n'importe quelle fiche, planifiez une activité (appel, tâche, "
                "réunion) avec une échéance et une personne : elle apparaît dans ses "
                "<a href=\"/activities/activity/\">activités</a>, avec un rappel le jour "
                "venu.</p>"
                "<p>Choisissez le type <em>Approbation</em> pour demander une décision : la "
                "personne approuve ou refuse depuis l'e-mail, en un clic.</p>"),
        },
    },
    {
        "key": "mailroom-digest-kpis",
        "sequence": 80,
        "roles": [MAIL_MANAGER],
        "record_types": [],
        "title": "Choose the numbers your digest shows",
        "body": (
            "<p>This digest shows the KPIs chosen for {{ company.name }}. Open "
            "<a href=\"/digests/digest/\">Digests</a> to pick others, grouped by app, "
            "change how often it goes out, or add a KPI of your own — a count or a sum of "
            "any record type, with a filter — without writing code.</p>"),
        "translations": {
            "fr_FR": (
                "Choisissez les chiffres de votre résumé",
                "<p>Ce résumé montre les indicateurs choisis pour {{ company.name }}. Ouvrez "
                "<a href=\"/digests/digest/\">Résumés</a> pour en choisir d'autres, changer "
                "la fréquence d'envoi ou créer votre propre indicateur — un nombre ou une "
                "somme sur n'importe quel type de fiche, avec un filtre — sans code.</p>"),
        },
    },
    {
        "key": "mailroom-leads-from-mail",
        "sequence": 90,
        "roles": [],
        "record_types": ["crm.lead"],
        "title": "Reply to a lead from its page",
        "body": (
            "<p>Write to a customer from the chatter of their <a href=\"/crm/lead/\">lead</a>"
            " rather than from your own mailbox: the whole team sees the conversation, the "
            "customer's answer comes back to the lead, and nothing is lost when someone is "
            "away.</p>"),
        "translations": {},
    },
]


def install(tip_model, translation_model) -> None:
    """Create the shipped tips, or rewrite their texts, roles and record types (an admin's
    `active` and `sequence` are kept). Takes the models so migrations pass their historical
    ones."""
    for data in TIPS:
        tip, created = tip_model.objects.get_or_create(
            key=data["key"], company=None,
            defaults={"title": data["title"], "body": data["body"],
                      "sequence": data["sequence"], "roles": data["roles"],
                      "record_types": data["record_types"]})
        if not created:
            tip.title, tip.body = data["title"], data["body"]
            tip.roles, tip.record_types = data["roles"], data["record_types"]
            tip.save(update_fields=["title", "body", "roles", "record_types"])
        for language, (title, body) in data["translations"].items():
            translation_model.objects.update_or_create(
                tip=tip, language=language, defaults={"title": title, "body": body})


def uninstall(tip_model, translation_model=None) -> None:
    tip_model.objects.filter(company=None, key__in=[t["key"] for t in TIPS]).delete()
