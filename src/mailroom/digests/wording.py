"""The words of a digest email, in the recipient's language.

Django's gettext, with the catalogues in `digests/locale/<lang>/LC_MESSAGES/django.po`
(French, German and Spanish). After editing a .po, compile it with Babel:
`pybabel compile -d src/mailroom/digests/locale -D django` (tests/digests/test_wording.py fails
when a .mo is not its .po, or when a word of the email has no translation). Other languages
get English words with their own numbers, money and dates. Sentences that name the period are
written out once per periodicity, because the grammar differs ("la semaine précédente", "le
mois précédent"); the caller activates the recipient's language (`speaking`) around the render.
KPI labels registered in code are msgids too: `label()` translates them when a catalogue
knows them, and leaves a company's own (custom) KPI names as they are.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.utils import translation
from django.utils.translation import gettext, gettext_noop, pgettext

from mailroom.digests.models import Periodicity

D, W, M, Q = (Periodicity.DAILY, Periodicity.WEEKLY, Periodicity.MONTHLY,
              Periodicity.QUARTERLY)

COMPARED = {D: gettext_noop("compared with the previous day"),
            W: gettext_noop("compared with the previous week"),
            M: gettext_noop("compared with the previous month"),
            Q: gettext_noop("compared with the previous quarter")}
PREVIOUS = {D: gettext_noop("Previous day: %(value)s"),
            W: gettext_noop("Previous week: %(value)s"),
            M: gettext_noop("Previous month: %(value)s"),
            Q: gettext_noop("Previous quarter: %(value)s")}
UP = {D: gettext_noop("up %(change)s on the previous day"),
      W: gettext_noop("up %(change)s on the previous week"),
      M: gettext_noop("up %(change)s on the previous month"),
      Q: gettext_noop("up %(change)s on the previous quarter")}
DOWN = {D: gettext_noop("down %(change)s on the previous day"),
        W: gettext_noop("down %(change)s on the previous week"),
        M: gettext_noop("down %(change)s on the previous month"),
        Q: gettext_noop("down %(change)s on the previous quarter")}
FROM_ZERO = {D: gettext_noop("up from 0 in the previous day"),
             W: gettext_noop("up from 0 in the previous week"),
             M: gettext_noop("up from 0 in the previous month"),
             Q: gettext_noop("up from 0 in the previous quarter")}
BELOW_ZERO = {D: gettext_noop("down from 0 in the previous day"),
              W: gettext_noop("down from 0 in the previous week"),
              M: gettext_noop("down from 0 in the previous month"),
              Q: gettext_noop("down from 0 in the previous quarter")}
SAME = {D: gettext_noop("same as the previous day"),
        W: gettext_noop("same as the previous week"),
        M: gettext_noop("same as the previous month"),
        Q: gettext_noop("same as the previous quarter")}
NOTHING = {D: gettext_noop("nothing to compare with the previous day"),
           W: gettext_noop("nothing to compare with the previous week"),
           M: gettext_noop("nothing to compare with the previous month"),
           Q: gettext_noop("nothing to compare with the previous quarter")}
HISTORY = {D: gettext_noop("%(label)s, last %(count)s days: %(values)s"),
           W: gettext_noop("%(label)s, last %(count)s weeks: %(values)s"),
           M: gettext_noop("%(label)s, last %(count)s months: %(values)s"),
           Q: gettext_noop("%(label)s, last %(count)s quarters: %(values)s")}
# how often, as an adverb ("sent weekly", "weekly instead of daily"); a context keeps these
# short words apart from any other catalogue's
HOW_OFTEN = "how often"
EVERY = {D: "daily", W: "weekly", M: "monthly", Q: "quarterly"}
NOT_AVAILABLE = gettext_noop("not available")
NOT_COMPUTED = gettext_noop("could not be computed this time")
N_A = gettext_noop("n/a")

# The labels of the KPIs Mailroom registers, so the catalogues carry them (core.kpis).
KPI_LABELS = [gettext_noop(label) for label in (
    "New leads", "Won revenue", "Quotations sent", "Orders confirmed", "Sales revenue",
    "Invoiced", "Paid", "Overdue amount", "Tickets opened", "Tickets closed",
    "Median first response", "New applicants", "Tasks done", "Emails sent", "Emails failed",
    "Bounces", "Emails received", "Routing quarantined", "Active users", "Messages posted",
)]


def django_language(locale: str) -> str:
    """"fr_FR" → "fr-fr" (Django falls back to "fr" when there is no fr-fr catalogue)."""
    return (locale or "en").replace("_", "-").lower()


@contextmanager
def speaking(locale: str):
    with translation.override(django_language(locale)):
        yield


def say(table: dict, periodicity: str, **values) -> str:
    text = gettext(table[periodicity])
    return text % values if values else text


def every(periodicity: str) -> str:
    return pgettext(HOW_OFTEN, EVERY[periodicity])


def label(kpi) -> str:
    """The KPI's label in the active language (a custom KPI keeps the name it was given)."""
    return gettext(kpi.label) if not kpi.key.startswith("custom.") else kpi.label
