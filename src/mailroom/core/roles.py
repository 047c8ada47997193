"""Roles are Django groups with a fixed meaning; each app declares what each role may do."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMINISTRATOR = "Administrator"
    MAIL_MANAGER = "Mail Manager"
    TEMPLATE_EDITOR = "Template Editor"
    USER = "User"


# app_label.model -> actions, per role. Administrators get every permission of our apps.
# Later apps add their rows here (servers for Mail Managers, templates for Template Editors).
ROLE_PERMISSIONS: dict[Role, dict[str, tuple[str, ...]]] = {
    Role.USER: {
        "contacts.partner": ("view", "add", "change"),
        "contacts.partnertag": ("view",),
        "chatter.message": ("view", "add"),
        "chatter.attachment": ("view", "add"),
        "chatter.follower": ("view", "add", "delete"),
        "activities.activity": ("view", "add", "change"),
        "crm.lead": ("view", "add", "change"),
        "helpdesk.ticket": ("view", "add", "change"),
        "recruitment.applicant": ("view", "add", "change"),
        "recruitment.jobposition": ("view",),
        "projects.project": ("view",),
        "projects.task": ("view", "add", "change"),
        "sales.quotation": ("view", "add", "change"),
        "sales.quotationline": ("view", "add", "change", "delete"),
        "sales.tax": ("view",),
        "invoicing.invoice": ("view", "add", "change"),
        "invoicing.invoiceline": ("view", "add", "change", "delete"),
        "core.company": ("view",),
        "outgoing.outgoingmail": ("view",),
        "outgoing.outgoingrecipient": ("view",),
        "outgoing.sendattempt": ("view",),
        # simple placeholders only (templating.services.validate_sources)
        "templating.emailtemplate": ("view", "add", "change"),
        "templating.templatetranslation": ("view", "add", "change", "delete"),
        "templating.templateattachment": ("view", "add", "change", "delete"),
        "automation.automationrule": ("view",),
        "automation.automationrun": ("view",),
        "routing.aliasdomain": ("view",),
        "routing.alias": ("view",),
        "incoming.inboundmail": ("view",),
        # "Send now to me" and the preview of digests they receive; tips' stats
        "digests.digest": ("view",),
        "digests.tip": ("view",),
        "letters.letter": ("view", "add"),
        "letters.letterevent": ("view",),
        "letters.postalprovider": ("view",),
        "letters.printbatch": ("view",),
        "campaigns.mailinglist": ("view",),
        "campaigns.subscription": ("view",),
        "campaigns.importjob": ("view",),
        "campaigns.campaign": ("view",),
        "campaigns.segment": ("view",),
        "campaigns.campaignrecipient": ("view",),
        "campaigns.suppression": ("view",),
    },
    Role.MAIL_MANAGER: {
        "core.cronjob": ("view", "change"),
        "core.cronrun": ("view",),
        "outgoing.mailserver": ("view", "add", "change", "delete"),
        "outgoing.outgoingmail": ("view", "change"),
        "outgoing.dkimkey": ("view", "add", "change", "delete"),
        "routing.aliasdomain": ("view", "add", "change", "delete"),
        "routing.alias": ("view", "add", "change", "delete"),
        "routing.allowedsender": ("view", "add", "change", "delete"),
        "incoming.incomingserver": ("view", "add", "change", "delete"),
        "incoming.inboundmail": ("view", "change"),
        "digests.digest": ("view", "add", "change", "delete"),
        "digests.tip": ("view", "add", "change", "delete"),
        "digests.tiptranslation": ("view", "add", "change", "delete"),
        "digests.customkpi": ("view", "add", "change", "delete"),
        "letters.letter": ("view", "add", "change"),
        "letters.letterevent": ("view",),
        "letters.postalprovider": ("view", "add", "change", "delete"),
        "letters.printbatch": ("view", "change"),
        "campaigns.mailinglist": ("view", "add", "change", "delete"),
        "campaigns.subscription": ("view", "add", "change", "delete"),
        "campaigns.importjob": ("view", "add", "change"),
        "campaigns.campaign": ("view", "add", "change", "delete"),
        "campaigns.segment": ("view", "add", "change", "delete"),
        "campaigns.campaigntranslation": ("view", "add", "change", "delete"),
        "campaigns.campaignrecipient": ("view",),
        "campaigns.suppression": ("view", "add", "delete"),
    },
    Role.TEMPLATE_EDITOR: {
        "templating.emailtemplate": ("view", "add", "change", "delete"),
        "templating.templatetranslation": ("view", "add", "change", "delete"),
        "templating.templateattachment": ("view", "add", "change", "delete"),
        "automation.automationrule": ("view", "add", "change", "delete"),
    },
}
OUR_APPS = {
    "core", "contacts", "chatter", "crm", "helpdesk", "recruitment", "projects", "sales",
    "invoicing", "outgoing", "templating", "automation", "routing", "incoming", "activities",
    "digests", "letters", "campaigns",
}


def sync_role_groups(sender=None, **kwargs) -> None:
    """Create the role groups and give them their permissions (idempotent, after migrate)."""
    from django.contrib.auth.models import Group, Permission

    using = kwargs.get("using", "default")
    perms = Permission.objects.using(using).select_related("content_type")
    by_key = {f"{p.content_type.app_label}.{p.content_type.model}:{p.codename.split('_', 1)[0]}": p
              for p in perms}
    for role in Role:
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        if role is Role.ADMINISTRATOR:
            wanted = [p for p in perms if p.content_type.app_label in OUR_APPS
                      and not (p.content_type.model in {"auditlog"} and
                               not p.codename.startswith("view"))]
            wanted += [p for p in perms if p.content_type.app_label == "auth"
                       and p.content_type.model == "group" and p.codename.startswith("view")]
        else:
            wanted = []
            for role_grant in (Role.USER, role):
                for model, actions in ROLE_PERMISSIONS.get(role_grant, {}).items():
                    wanted += [by_key[f"{model}:{a}"] for a in actions if f"{model}:{a}" in by_key]
        group.permissions.set(wanted)
