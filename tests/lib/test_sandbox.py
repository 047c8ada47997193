"""The user-template sandbox: hostile templates fail fast and small, normal ones just work."""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
import tracemalloc
from decimal import Decimal

import pytest

from mailroom.lib.sandbox import (
    Limits,
    TemplateError,
    check_simple,
    compile_template,
    placeholders,
    render_string,
)

CONTEXT = {
    "object": {
        "name": "S00042 <script>alert(1)</script>",
        "partner": {"name": "Jane & Co", "email": "jane@example.com", "lang": "de_DE"},
        "lines": [
            {"name": "Chair", "qty": 2, "price": Decimal("450.00")},
            {"name": "Lamp", "qty": 3, "price": Decimal("111.50")},
        ],
        "amount_total": Decimal("1234.50"),
        "currency": "EUR",
        "date": dt.date(2026, 11, 24),
        "sent": dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC),
        "items": ["the field, not dict.items"],
        "note": None,
    },
    "company": {"name": "Acme"},
    "x": 1,
}
FAST = Limits(max_seconds=0.5)

# Each payload either raises TemplateError or (None) renders to something short and harmless.
ANY_LIMIT = ""  # a TemplateError is expected; which budget fires depends on machine load

HOSTILE = {
    "{{ ''.__class__.__mro__ }}": "'__class__'",
    "{{ x.__class__ }}": "'__class__'",
    "{{ ''|attr('__class__') }}": "No filter named 'attr'",
    "{{ 'a'|attr('format') }}": "No filter named 'attr'",
    "{{ '{0.__class__}'.format(1) }}": "'format'",
    "{{ '{0}'.format_map({}) }}": "'format_map'",
    "{{ 'a' * 10**8 }}": "longer than 100,000",
    "{{ 10**8 * 'a' }}": "longer than 100,000",
    "{{ [1] * 10**8 }}": "longer than 100,000",
    "{{ 2 ** 100000000 }}": "too large",
    "{{ 10 ** 10 ** 10 }}": None,  # Jinja's ** binds left: (10**10)**10, a harmless 10**100
    "{{ (10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000) }}":
        "too large",
    "{% for i in range(10**9) %}{% endfor %}": "range() is limited",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}":
        "loops ran more than",
    "{% set s = 'x' * 100000 %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}":
        "loops ran more than",
    '{{ "%999999999s"|format(1) }}': "longer than",
    '{{ "%999999999s" % 1 }}': "longer than",
    '{{ "%*s" % (10**9, "a") }}': "'*' widths",
    "{{ '%(a%)999999999s' % {'a%': 1} }}": "format keys can only be simple names",
    "{{ (('%(' * 30000) ~ ')') % {} }}": "format keys can only be simple names",
    "{{ ('<a>' * 33000)|striptags|length }}": None,
    "{{ ('a' * 99999)|truncate(5, true) }}": None,
    "{{ 'a'|center(10**9) }}": "longer than",
    "{{ 'a'|center(1000000000) }}": "longer than",
    "{{ ('a\n' * 1000)|indent(10**6) }}": "longer than",
    "{{ ('a ' * 40000)|wordwrap(1, wrapstring='x' * 1000) }}": "longer than",
    "{{ 'abc'|truncate(10**9, end='x' * 10**6) }}": "longer than",
    "{{ ('a'*1000)|replace('a','a'*1000)|replace('a','a'*1000) }}": "longer than",
    "{{ (range(100000)|list)|join('x' * 1000) }}": "the template builds more than",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "too deeply",
    # 2**60 calls: the time, loop or output budget stops it, whichever the machine hits first
    "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(60) }}":
        ANY_LIMIT,
    "{% for x in [1] recursive %}{{ loop(range(100000)) }}{% endfor %}": "too deeply",
    "{{ lipsum(10**6) }}": "'lipsum' is undefined",
    "{{ cycler }}": "'cycler' is undefined",
    "{{ joiner(',') }}": "'joiner' is undefined",
    "{{ namespace(a=1).__class__ }}": "'__class__'",
    "{% set ns = namespace() %}{% set ns.self = ns %}": "not namespace objects",
    "{% set x = [] %}{% for i in range(100000) %}{% set _ = x.append(i) %}{% endfor %}":
        "'append'",
    "{{ object.lines.pop() }}": "'pop'",
    "{{ object.partner.update({}) }}": "'update'",
    "{{ self }}": "'self' is not available",
    "{{ config }}": "'config' is undefined",
    "{{ request }}": "'request' is undefined",
    "{{ object.name.upper() }}": None,  # allowed, harmless and size-preserving
    "{{ object.name.replace('a', 'b') }}": "'replace'",
    "{{ object.name.zfill(10**9) }}": "'zfill'",
    "{{ (1).to_bytes(10**9) }}": "'to_bytes'",
    "{% set a = 'x'*100000 %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
    "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}"
    "{% set e = [d,d,d,d,d,d,d,d,d,d] %}{% set f = [e,e,e,e,e,e,e,e,e,e] %}{{ f }}":
        "longer than",
    "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l] * 50000 %}"
    "{% endfor %}": "longer than",
    "{% set ns = namespace(s='') %}{% for i in range(60000) %}{% set ns.s = ns.s ~ 'abcdefghij' %}"
    "{% endfor %}": "the template builds more than 3,000,000 characters",
    "{% set x %}{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}{% endset %}":
        "in variables, macros or blocks",
    "{% for i in range(100000) %}" + "a" * 100 + "{% endfor %}": "output is longer than",
    "{% set l = [range(100000)|list] * 1000 %}{{ l|string|length }}":
        "the template builds more than",
    "{{ [1, 2]|sum(start=[]) }}": "sum only adds numbers",
    "{% set s = 'x' * 99999 %}{{ {1: s, 2: s}.items() }}": "longer than",
    # Error messages that would quote a huge value:
    "{% set s = 'x' * 99999 %}{{ [1].index([s, s, s] * 30000) }}": "'index'",
    "{% set s = 'x' * 99999 %}{{ [1]|map((s, s, s) * 30000)|list }}": "names must be text",
    "{% set s = 'x' * 99999 %}{{ [1]|selectattr('a', (s,) * 90000)|list }}": "names must be text",
    "{% set s = 'x' * 99999 %}{{ object[[s, s] * 40000].x }}": "has no element a list",
    # Many strings or lists, each within max_string, kept alive at once:
    "{% set ns = namespace(l=[], s='x' * 90000) %}{% for i in range(1000) %}"
    "{% set ns.l = ns.l + [ns.s ~ i] %}{% endfor %}": "in total",
    "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
    "{% set ns.l = [ns.l, ('ab ' * 30000).split()] %}{% endfor %}": "in total",
    "".join(f"{{% set v{i} = [0] * 99999 %}}" for i in range(200)): "in total",
    "".join(f"{{% set v{i} = 'x' * 99999 %}}" for i in range(200)): "in total",
    "{{ 5|round(-10**9) }}": "precision",
    "{% autoescape false %}{{ object.name }}{% endautoescape %}": "{% autoescape %}",
    "{% include 'other' %}": "{% include %}",
    "{% extends 'base' %}": "{% extends %}",
    "{% import 'm' as m %}": "{% import %}",
    "{{ object.name|safe }}": "'|safe' only applies to HTML written in the template",
    "{% macro m() %}{{ varargs }}{% endmacro %}": "'varargs' is not available",
    "{{ object.lines[0].__init__.__globals__ }}": "'__init__'",
    "{{ object.lines|map('attr', '__class__')|list }}": "attr",
}


def test_the_time_budget_stops_a_render_that_runs_out_of_time() -> None:
    # a deadline already past: the first loop step refuses, however fast the machine is
    with pytest.raises(TemplateError, match="took longer than 0 s"):
        render_string("{% for i in range(10) %}{{ i }}{% endfor %}", CONTEXT,
                      limits=Limits(max_seconds=0))


# Count and size budgets are deterministic; the time budget is not (a loaded machine reaches
# it first). Each case gets a time budget it never needs, so the limit it names is the one
# that fires; the time budget has its own test, and only the 2**60-call macro relies on it.
PATIENT = Limits(max_seconds=60)


@pytest.mark.parametrize("source", list(HOSTILE))
def test_hostile_templates_fail_fast_and_small(source: str) -> None:
    expected = HOSTILE[source]
    limits = FAST if expected == ANY_LIMIT else PATIENT
    tracemalloc.start()
    try:
        if expected is None:
            assert len(render_string(source, CONTEXT, limits=limits)) < 200
        else:  # the typed error, naming the limit that stopped it
            with pytest.raises(TemplateError, match=re.escape(expected)):
                render_string(source, CONTEXT, limits=limits)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 5_000_000


def test_normal_template_renders() -> None:
    source = (
        "Dear {{ object.partner.name }},\n"
        "{% for line in object.lines %}"
        "{{ loop.index }}. {{ line.name|upper }} × {{ line.qty }} = "
        "{{ (line.price * line.qty)|money(object.currency) }}\n"
        "{% endfor %}"
        "{% if object.amount_total > 1000 %}Total: {{ object.amount_total|money('EUR') }}"
        "{% else %}small{% endif %}\n\n"
        "{{ object.date|date }} {{ object.sent|datetime('short') }} {{ object.note }}|"
        "{{ object.missing|default('n/a') }}{% if object.missing is defined %}!{% endif %}"
    )
    assert render_string(source, CONTEXT, html=False, locale="de_DE",
                         timezone="Europe/Berlin") == (
        "Dear Jane & Co,\n"
        "1. CHAIR × 2 = 900,00\xa0€\n"
        "2. LAMP × 3 = 334,50\xa0€\n"
        "Total: 1.234,50\xa0€\n"
        "24.11.2026 25.11.26, 00:30 |n/a")


def test_same_template_in_english() -> None:
    source = "{{ object.amount_total|money(object.currency) }} {{ object.date|date('short') }}"
    assert render_string(source, CONTEXT, locale="en_US") == "€1,234.50 11/24/26"
    assert render_string("{{ 0.256|percent }} {{ 1234.5|number(2) }}", {}, locale="fr_FR") == \
        "26\xa0% 1\u202f234,50"


def test_data_is_escaped_in_html_and_not_in_text() -> None:
    assert render_string("<p>{{ object.name }}</p>", CONTEXT) == \
        "<p>S00042 &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render_string("{{ object.name }}", CONTEXT, html=False) == \
        "S00042 <script>alert(1)</script>"
    assert render_string("{{ object.name ~ '!' }}", CONTEXT) == \
        "S00042 &lt;script&gt;alert(1)&lt;/script&gt;!"
    assert render_string("{% set x %}<b>{{ object.name }}</b>{% endset %}{{ x }}", CONTEXT) == \
        "<b>S00042 &lt;script&gt;alert(1)&lt;/script&gt;</b>"


def test_safe_only_on_literal_html_in_html_fields() -> None:
    assert render_string("{{ '<b>hi</b>'|safe }}", {}) == "<b>hi</b>"
    with pytest.raises(TemplateError, match="values from records are always escaped"):
        compile_template("{{ object.name|safe }}")
    with pytest.raises(TemplateError, match="plain text"):
        compile_template("{{ '<b>'|safe }}", field="subject", html=False)


def test_filters_and_methods_that_stay_available() -> None:
    source = (
        "{{ object.lines|map(attribute='name')|join(', ') }}|"
        "{{ object.lines|selectattr('qty', 'gt', 2)|map(attribute='name')|first }}|"
        "{{ object.lines|sum(attribute='qty') }}{{ [1, 1]|sum(start=1) }}|"
        "{{ [3, 1, 2]|sort|list }}|"
        "{{ 'a,b'.split(',')|reverse|join }}|{{ '%s-%05d'|format('S', 42) }}|"
        "{{ 'Hi'|center(6) }}|{{ 'long text here'|truncate(9, leeway=0) }}|"
        "{{ 'abc'|replace('b', 'X') }}|"
        "{{ object.items|length }}|{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}|"
        "{% set ns = namespace(total=0) %}{% for l in object.lines %}"
        "{% set ns.total = ns.total + l.qty %}{% endfor %}{{ ns.total }}|"
        "{{ object.partner.get('name') }}|{{ object.date.isoformat() }}|{{ 7 // 2 }} {{ -3|abs }}"
    )
    assert render_string(source, CONTEXT, html=False) == (
        "Chair, Lamp|Lamp|53|[1, 2, 3]|ba|S-00042|  Hi  |long...|aXc|1|a=1|5|Jane & Co|"
        "2026-11-24|3 3")


def test_macros_and_calls() -> None:
    source = ('{% macro button(label, url) %}<a href="{{ url }}">{{ label }}</a>{% endmacro %}'
              "{{ button(object.partner.name, 'https://x.example/?a=1&b=2') }}"
              "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}in{% endcall %}")
    assert render_string(source, CONTEXT) == \
        '<a href="https://x.example/?a=1&amp;b=2">Jane &amp; Co</a>[in]'


def test_tags_leave_no_blank_lines() -> None:
    source = "{% for l in object.lines %}\n  - {{ l.name }}\n{% endfor %}\n"
    assert render_string(source, CONTEXT, html=False) == "  - Chair\n  - Lamp\n"


def test_errors_name_template_field_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_string("Hello\n\n{{ object.nme.first }}", CONTEXT, name="Send quotation")
    error = caught.value
    assert (error.template, error.field, error.line) == ("Send quotation", "body", 3)
    assert error.message == "'object.nme' is undefined"
    assert str(error) == "Template 'Send quotation', body, line 3: 'object.nme' is undefined"

    with pytest.raises(TemplateError) as caught:
        compile_template("Hi\n{% if %}", name="Welcome", field="subject", html=False)
    assert caught.value.line == 2 and str(caught.value).startswith(
        "Template 'Welcome', subject, line 2: ")

    with pytest.raises(TemplateError) as caught:
        render_string("{% for i in range(3) %}\n{{ 1 / 0 }}{% endfor %}", {})
    assert caught.value.line == 2 and caught.value.message == "division by zero"

    with pytest.raises(TemplateError) as caught:
        render_string("{{ 'abc'|money('EUR') }}", {}, field="body")
    assert "'abc' is not a number" in str(caught.value)


def test_error_without_a_line() -> None:
    assert str(TemplateError("boom", template="T", field="to")) == "Template 'T', to: boom"


def test_compiled_once_for_many_renders() -> None:
    source = "Hi {{ object.partner.name }}"
    first = compile_template(source, name="A")
    second = compile_template(source, name="B", field="subject")
    assert first._template is second._template  # the (source, html) cache
    assert compile_template(source, html=False)._template is not first._template
    assert [first.render(CONTEXT) for _ in range(3)] == ["Hi Jane &amp; Co"] * 3


def test_limits_are_per_render() -> None:
    template = compile_template("{% for c in 'y' * 50 %}x{% endfor %}")
    assert template.render({}) == "x" * 50
    with pytest.raises(TemplateError, match="loops ran more than 10"):
        template.render({}, limits=Limits(max_iterations=10))
    with pytest.raises(TemplateError, match="output is longer than 20"):
        template.render({}, limits=Limits(max_output=20))
    assert template.render({}) == "x" * 50


def test_a_bad_time_zone_is_the_callers_error() -> None:
    with pytest.raises(ValueError, match="time zone"):
        render_string("x", {}, timezone="Mars/Olympus")


def test_concurrent_renders_keep_their_own_locale() -> None:
    template = compile_template("{{ 1234.5|money('EUR') }}|{{ object.date|date }}")
    expected = {"de_DE": "1.234,50\xa0€|24.11.2026", "en_US": "€1,234.50|Nov 24, 2026"}
    wrong: list[str] = []

    def work(locale: str) -> None:
        for _ in range(200):
            result = template.render(CONTEXT, locale=locale)
            if result != expected[locale]:
                wrong.append(result)

    threads = [threading.Thread(target=work, args=(loc,)) for loc in list(expected) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_placeholders() -> None:
    source = ("{{ object.partner.name }} {% for l in object.lines %}{{ l.name }}"
              "{{ loop.index }}{% endfor %}{{ object.name.upper() }}"
              "{{ object.amount_total|money(object.currency) }}{% set z = 1 %}{{ z }}"
              "{% if company.name %}{{ company.name }}{% endif %}{{ object.partner.name }}")
    assert placeholders(source) == ["object.partner.name", "object.lines", "object.name",
                                    "object.amount_total", "object.currency", "company.name"]
    with pytest.raises(TemplateError):
        placeholders("{{ unclosed")


ALLOWED = {"object.partner.name", "object.amount_total", "object.currency", "object.date",
           "company"}


def test_check_simple_accepts_placeholders_and_formatting() -> None:
    source = ("<p>Dear {{ object.partner.name }},</p>\n"
              "<p>{{ object.amount_total|money(object.currency) }} on {{ object.date|date }}, "
              "{{ object.date|date('short') }} {{ object.amount_total|number(digits=2) }}</p>"
              "{{ company.name }} {{ object.partner }}{# a comment #}")
    assert check_simple(source, ALLOWED) == []
    assert check_simple("{{ anything.at.all }}") == []


@pytest.mark.parametrize(
    ("source", "what"),
    [("{% for l in object.lines %}{% endfor %}", "'{% for %}'"),
     ("{% if x %}{% endif %}", "'{% if %}'"),
     ("{% set a = 1 %}", "'{% set %}'"),
     ("{{ object.name.upper() }}", "calls such as 'object.name.upper()'"),
     ("{{ a + b }}", "operators such as '+'"),
     ("{{ a ~ b }}", "operators such as '~'"),
     ("{{ x[0] }}", "subscripts"),
     ("{{ y|upper }}", "the filter '|upper'"),
     ("{{ 'text' }}", "literal values"),
     ("{{ x is defined }}", "tests such as 'is defined'"),
     ("{{ x|money(a + b) }}", "filter arguments")],
)
def test_check_simple_refuses_everything_else(source: str, what: str) -> None:
    problems = check_simple("Hello\n" + source)
    assert problems and problems[0].startswith(
        "Line 2: only simple placeholders like {{ object.partner.name }} are allowed; "
        "ask a Template Editor for ")
    assert what in problems[0]


def test_check_simple_paths_and_syntax() -> None:
    assert check_simple("{{ object.secret }}", ALLOWED) == [
        "Line 1: 'object.secret' is not a field you can use in this template."]
    assert check_simple("{{ object.amount_total|money(object.secret) }}", ALLOWED) == [
        "Line 1: 'object.secret' is not a field you can use in this template."]
    assert check_simple("ok\n{{ unclosed ") == [
        "Line 2: unexpected end of template, expected 'end of print statement'."]


# --- fuzzing: random templates built from the dangerous pieces above -----------------------

ATOMS = ["'x'", "s", "n", "l", "d", "object.lines", "object.name", "10**5", "99999", "3",
         "[1, 2]", "(1,)", "{'a': s}", "range(1000)", "range(100000)", "ns.v", "none", "'%s'",
         "'%(a)s'", "'<a>'", "loop.length", "('x' * 99999)", "[l, l, l, l, l, l, l, l]",
         "d.items()"]
OPERATORS = ["*", "+", "~", "%", "**", "//", "==", "in"]
FILTERS = ["list", "join(s)", "replace(s, s)", "replace('', s)", "center(n)", "indent(n)",
           "wordwrap(3)", "truncate(n)", "format(s)", "upper", "string", "e", "sort", "unique",
           "reverse", "map('string')", "select", "length", "first", "sum", "round(n)",
           "urlencode", "striptags", "money('EUR')", "number(2)", "selectattr('qty')",
           "map(attribute='name')"]
METHODS = ["split()", "upper()", "items()", "values()", "get('a')", "count(s)", "index(1)"]


def random_expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice(ATOMS)
    inner = random_expression(rng, depth + 1)
    if roll < 0.55:
        return f"({inner} {rng.choice(OPERATORS)} {random_expression(rng, depth + 1)})"
    if roll < 0.75:
        return f"({inner})|{rng.choice(FILTERS)}"
    if roll < 0.85:
        return f"({inner}).{rng.choice(METHODS)}"
    return f"[{inner}, {random_expression(rng, depth + 1)}, {inner}]"


def random_statement(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    body = "".join(random_statement(rng, depth + 1) for _ in range(rng.randint(1, 3))) \
        if depth < 2 else ""
    if depth > 2 or roll < 0.35:
        return "{{ " + random_expression(rng) + " }}"
    if roll < 0.55:
        return "{% set " + rng.choice(["s", "l", "ns.v"]) + " = " + random_expression(rng) + " %}"
    if roll < 0.75:
        return "{% for x in " + random_expression(rng) + " %}" + body + "{% endfor %}"
    if roll < 0.85:
        return "{% set m %}" + body + "{% endset %}{{ m }}"
    if roll < 0.95:
        return ("{% macro mm(a) %}" + body + "{% endmacro %}{{ mm(" + random_expression(rng)
                + ") }}{{ mm(1) }}")
    return ("{% macro rr(k) %}{% if k %}{{ rr(k - 1) }}" + body + "{{ rr(k - 1) }}{% endif %}"
            "{% endmacro %}{{ rr(" + rng.choice(["3", "12", "25"]) + ") }}")


@pytest.mark.parametrize("seed", range(6))
def test_random_hostile_templates_stay_within_limits(seed: int) -> None:
    rng = random.Random(seed)
    prelude = ("{% set ns = namespace(v=1) %}{% set s = 'xy' * 1000 %}{% set n = 50 %}"
               "{% set l = [1, 2, 3] %}{% set d = {'a': 1} %}")
    for _ in range(25):
        source = prelude + "".join(random_statement(rng) for _ in range(rng.randint(1, 4)))
        tracemalloc.start()
        try:
            render_string(source, CONTEXT, limits=FAST)
        except TemplateError:
            pass  # the typed error is the only way out; any other exception fails the test
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert peak < 5_000_000, source
