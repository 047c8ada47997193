"""The sidebar entries of the campaigns app, under Email."""

from __future__ import annotations

from mailroom.campaigns.campaign_models import Campaign, Segment
from mailroom.campaigns.models import ImportJob, MailingList, Subscription, Suppression
from mailroom.core import navigation


def register() -> None:
    """Called from CampaignsConfig.ready(); idempotent."""
    if not any(e.url_name == "admin:campaigns_mailinglist_changelist"
               for e in navigation.ENTRIES):
        navigation.add_model("Email", "Campaigns", "campaign", Campaign)
        navigation.add_model("Email", "Mailing lists", "list_alt", MailingList)
        navigation.add_model("Email", "Segments", "filter_alt", Segment)
        navigation.add_model("Email", "Subscriptions", "how_to_reg", Subscription)
        navigation.add_model("Email", "Contact imports", "upload_file", ImportJob)
        navigation.add_model("Email", "Suppression list", "block", Suppression)
