"""The gateway's own `_getaddr` (written for speed: aiosmtpd's defines a class per call) answers
exactly as aiosmtpd's for any MAIL FROM / RCPT TO argument, with and without a local-part
limit — except where aiosmtpd's raises (the stdlib parser breaks on a truncated argument, or
on "0@[", which Hypothesis found): there ours says "malformed" (None, None), and the client
gets a 553, not a 500."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.incoming.gateway.sessions import GatewayLMTP, GatewaySMTP
from tests.incoming.test_gateway import gateway, smtp  # noqa: F401 - a fixture

ATOMS = st.sampled_from(["<", ">", "@", ".", '"', "\\", " ", ",", ":", ";", "(", ")", "[", "]",
                         "=", "a", "Z", "0", "é", "用户", "-", "+", "_", "\t", "SIZE=10",
                         "BODY=8BITMIME", "postmaster", "example.com", "[127.0.0.1]",
                         "[IPv6:::1]", "x" * 70])
ARGUMENTS = st.one_of(st.text(max_size=80), st.lists(ATOMS, max_size=14).map("".join))
# near the gateway's fast path for "<local@domain>": dots, hyphens and odd characters where a
# plain address has letters, and whatever may follow the ">"
PLAIN_PARTS = st.text(st.sampled_from("aZ09._+-@.!#é\"()[] <>"), min_size=1, max_size=12)
AFTER = st.sampled_from(["", " SIZE=10", ">", "x", " ", "<a@b>", " (c) x", "(c)",
                        "\t \x0b BODY=8BITMIME", " \u2003x"])
NEAR_PLAIN = st.builds(lambda local, domain, rest: f"<{local}@{domain}>{rest}", PLAIN_PARTS,
                       PLAIN_PARTS, AFTER)

KNOWN = ["", "<>", "<ada@client.example>", "ada@client.example", " <ada@client.example> SIZE=9",
         "<@relay.example:ada@client.example>", '<"john doe"@client.example>', "<ada@>",
         "<ada", "ada@client.example>", "<用户@例子.广告>", "<" + "x" * 65 + "@client.example>",
         "<postmaster>", "<ada@[127.0.0.1]>", "<a(comment)@client.example>", "<<>>",
         "<", " <", "<@", '"', "0@[", "<0@[>", "<a@[1.2>", "<a.b@c.d> SIZE=9", "<.a@b>",
         "<a.@b>", "<a..b@c>", "<a@b.>", "<a@.b>", "<a@b..c>", "<a-@-b>", "<A_B+c@X-Y.Z>",
         "<a@b>>", "<a@b><c@d>"]


class Session:
    def __init__(self, limit: int) -> None:
        self.local_part_limit = limit


def same(argument: str, limit: int) -> None:
    session = Session(limit)
    try:
        expected = SMTP._getaddr(session, argument)
    except Exception:  # IndexError, AttributeError: the stdlib parser breaks (module doc)
        expected = (None, None)
    assert GatewaySMTP._getaddr(session, argument) == expected, argument
    assert GatewayLMTP._getaddr(session, argument) == expected, argument


@pytest.mark.parametrize("limit", [0, 64])
@pytest.mark.parametrize("argument", KNOWN)
@pytest.mark.nodb
def test_known_arguments_parse_as_aiosmtpd_parses_them(argument, limit):
    same(argument, limit)


@pytest.mark.nodb
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argument=ARGUMENTS, limit=st.sampled_from([0, 1, 8, 64]))
def test_any_argument_parses_as_aiosmtpd_parses_it(argument, limit):
    same(argument, limit)


@pytest.mark.nodb
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argument=NEAR_PLAIN, limit=st.sampled_from([0, 1, 8, 64]))
def test_plain_looking_addresses_parse_as_aiosmtpd_parses_them(argument, limit):
    same(argument, limit)



def test_a_truncated_address_gets_553_malformed_not_a_500_quoting_python(gateway):  # noqa: F811
    client = smtp(gateway)
    try:
        replies = [client.docmd("MAIL", "FROM:<"), client.docmd("MAIL", 'FROM:"'),
                   client.docmd("MAIL", "FROM:<ada@client.example>"),
                   client.docmd("RCPT", "TO:<@"), client.docmd("RCPT", "TO:0@[")]
    finally:
        client.close()
    assert [code for code, _ in replies] == [553, 553, 250, 553, 553], replies
    assert b"malformed" in replies[0][1] and not any(b"Error" in m and b"(" in m
                                                    for _, m in replies), replies
