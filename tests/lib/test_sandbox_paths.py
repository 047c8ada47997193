"""Templates that cannot send broken text: strict undefined at render, and every path checked
against the context's schema before a template is saved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from mailroom.lib.sandbox import ANYTHING, ListOf, TemplateError, render_string, unknown_paths

CONTEXT = {
    "object": {
        "ref": "S00042",
        "partner": {"id": 7, "name": "Jane & Co", "email": "jane@example.com"},
        "lines": [{"description": "Chair", "quantity": 2}],
        "user": None,  # an empty relation
        "amount_total": Decimal("10.5"),
        "currency": "EUR",
        "date": dt.date(2026, 11, 24),
    },
    "ctx": {"extra": "hi"},
}
SCHEMA = {
    "object": {
        "id": None, "ref": None, "amount_total": None, "currency": None,
        "date": {"year": None, "month": None, "day": None},
        "partner": {"id": None, "name": None, "email": None},
        "user": {"id": None, "first_name": None},
        "lines": ListOf({"id": None, "description": None, "quantity": None}),
    },
    "company": {"name": None},
    "ctx": ANYTHING,
}


# --- strict undefined at render ------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "Hello\n{{ object.partner.nam }}",
    "Hello\n{% if object.partner.nam %}x{% endif %}",
    "Hello\n{{ object.partner.nam|upper }}",
    "Hello\n{{ object.partner.nam|money('EUR') }}",
    "Hello\n{{ object.partner.nam ~ '!' }}",
    "Hello\n{{ 'x' if object.partner.nam == 'a' else 'y' }}",
    "Hello\n{% for c in object.partner.nam %}{% endfor %}",
])
def test_an_undefined_field_is_an_error_naming_template_field_path_and_line(source):
    with pytest.raises(TemplateError) as caught:
        render_string(source, CONTEXT, name="Send quotation", field="body", html=False)
    error = caught.value
    assert (error.template, error.field, error.line) == ("Send quotation", "body", 2)
    assert error.message == "'object.partner.nam' is undefined"
    assert str(error) == "Template 'Send quotation', body, line 2: " \
                         "'object.partner.nam' is undefined"


def test_undefined_loop_fields_and_names_are_named_too():
    with pytest.raises(TemplateError, match=r"line 2: 'line\.qty' is undefined"):
        render_string("{% for line in object.lines %}\n{{ line.qty }}{% endfor %}", CONTEXT)
    with pytest.raises(TemplateError, match="line 1: 'objct' is undefined"):
        render_string("{{ objct.ref }}", CONTEXT)
    with pytest.raises(TemplateError, match="'object.currncy' is undefined"):
        render_string("{{ object.amount_total|money(object.currncy) }}", CONTEXT)


def test_defined_tests_defaults_and_empty_relations_still_render():
    source = ("{{ object.partner.vat|default('no VAT') }}|"
              "{% if object.partner.vat is defined %}vat{% else %}none{% endif %}|"
              "{{ object.user.first_name }}|{{ object.user.first_name|upper }}|"
              "{% if not object.user.first_name %}no salesperson{% endif %}|"
              "{{ object.amount_total|money(object.currency) }}|{{ ctx.extra }}")
    assert render_string(source, CONTEXT, html=False) == \
        "no VAT|none|||no salesperson|€10.50|hi"


# --- paths checked before saving -----------------------------------------------------------------

def paths(source):
    return [(u.path, u.line, u.suggestions) for u in unknown_paths(source, SCHEMA)]


def test_a_misspelt_field_is_named_with_the_nearest_valid_ones():
    assert paths("Hi\n\n{{ object.partner.nam }}") == [
        ("object.partner.nam", 3, ("object.partner.name",))]
    assert paths("{{ objct.ref }}") == [("objct.ref", 1, ("object.ref",))]
    found = unknown_paths("{{ object.partner.vat }}", SCHEMA)[0]
    assert found.path == "object.partner.vat" and set(found.suggestions) <= {
        "object.partner.id", "object.partner.name", "object.partner.email"}
    assert found.suggestions  # always the nearest names, even when none is close


def test_valid_templates_pass():
    source = ("{{ object.partner.name }} {{ object.ref.upper() }} {{ object.date.year }}"
              "{% for line in object.lines|sort(attribute='quantity') %}{{ line.description }}"
              "{{ loop.index }}{% endfor %}{{ object.lines|length }}{{ object.lines[0].quantity }}"
              "{% set p = object.partner %}{{ p.anything }}{{ ctx.whatever.deep }}"
              "{% macro b(x) %}{{ x.y }}{% endmacro %}{{ b(object.ref) }}"
              "{{ object.partner['email'] }}{% for i in range(3) %}{{ i }}{% endfor %}"
              "{{ namespace(a=1).a }}{% if object.user %}{{ object.user.first_name }}{% endif %}")
    assert paths(source) == []


def test_loop_variables_are_checked_against_the_list_items():
    assert paths("{% for line in object.lines %}\n{{ line.descripton }}{% endfor %}") == [
        ("line.descripton", 2, ("line.description",))]
    outside = unknown_paths("{% for l in object.lines %}{% endfor %}{{ l.quantity }}", SCHEMA)
    assert [u.path for u in outside] == ["l.quantity"]  # undefined after the loop


def test_lists_and_plain_values_say_why():
    found = unknown_paths("{{ object.lines.description }}", SCHEMA)[0]
    assert found.path == "object.lines.description" and "is a list: loop over it" in found.hint
    found = unknown_paths("{{ object.ref.number }}", SCHEMA)[0]
    assert found.hint == "object.ref is a value without fields"


def test_every_unknown_path_is_reported_once_in_order():
    source = "{{ object.partner.nam }}\n{{ object.partner.nam }}\n{{ company.nme }}"
    assert [(u.path, u.line) for u in unknown_paths(source, SCHEMA)] == [
        ("object.partner.nam", 1), ("company.nme", 3)]
