"""Open and click tracking (stub: returns the source unchanged until built).

`instrument(campaign, source, *, opens, clicks)` is called by the engine once per language
and variant on the finished HTML (a Jinja source: the per-recipient parts are still
placeholders). It returns the source with each trackable `<a href>` turned into
`{{ click_base }}/<CampaignLink id>` and, when `opens`, the open pixel `{{ open_url }}` added;
the engine passes `click_base` and `open_url` (links.py) in each recipient's context.
"""

from __future__ import annotations


def instrument(campaign, source: str, *, opens: bool, clicks: bool) -> str:
    return source
