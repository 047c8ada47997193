"""A campaign's figures (stub until built: the tracking helper fills it in).

`summary(campaign) -> dict` with integer counts `targeted, excluded, queued, sent, delivered,
opened, machine_opened, clicked, replied, bounced, bounced_hard, bounced_soft, unsubscribed,
complained, failed` and `rates`: {name: percent float of sent (opened, clicked, replied,
bounced, unsubscribed, complained)}.
`timeline(campaign) -> list[dict]`: [{"at": datetime (hour), "opened": n, "clicked": n, …}].
`links(campaign) -> list[dict]`: [{"url": str, "clicks": n, "people": n}], most clicked first.
"""

from __future__ import annotations

KEYS = ("targeted", "excluded", "queued", "sent", "delivered", "opened", "machine_opened",
        "clicked", "replied", "bounced", "bounced_hard", "bounced_soft", "unsubscribed",
        "complained", "failed")


def summary(campaign) -> dict:
    figures = dict.fromkeys(KEYS, 0)
    figures["targeted"] = campaign.total
    figures["excluded"] = campaign.excluded
    figures["queued"] = campaign.queued
    figures["rates"] = {}
    return figures


def timeline(campaign) -> list[dict]:
    return []


def links(campaign) -> list[dict]:
    return []
