"""`{% money %}`, `{% day %}`, `{% qty %}` and `{% pct %}` for document templates.

They read `locale` and `currency` from the template context (set by `pdf.build_context`), so a
template says what to print and `mailroom.lib.formatting` alone decides how it is written.
"""

from django import template

from mailroom.lib import formatting

register = template.Library()


@register.simple_tag(takes_context=True)
def money(context, amount) -> str:
    return formatting.format_amount(amount, context["currency"], context["locale"])


@register.simple_tag(takes_context=True)
def day(context, value) -> str:
    return formatting.format_date(value, context["locale"])


@register.simple_tag(takes_context=True)
def qty(context, value) -> str:
    return formatting.format_quantity(value, context["locale"])


@register.simple_tag(takes_context=True)
def pct(context, value) -> str:
    return formatting.format_rate(value, context["locale"])
