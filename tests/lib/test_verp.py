"""lib/verp.py: signed bounce and reply addresses round-trip and refuse anything forged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.lib import verp
from tests.lib.test_mime import FUZZ

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
ids = st.integers(min_value=0, max_value=2**63 - 1)


@settings(max_examples=300 * FUZZ)
@given(mail_id=ids, recipient_id=st.one_of(st.none(), ids),
       case=st.sampled_from([str.lower, str.upper, str.title]))
def test_bounce_address_round_trips_in_any_case(mail_id, recipient_id, case):
    address = verp.make_bounce_address(mail_id=mail_id, recipient_id=recipient_id,
                                       domain="bounces.acme.example", key=KEY)
    local, domain = address.split("@")
    assert local.startswith("bounce+") and len(local) <= 64 and domain == "bounces.acme.example"
    assert address == address.lower()
    expected = (mail_id, recipient_id)
    assert verp.parse_bounce_address(address, KEY) == expected
    assert verp.parse_bounce_address(case(address), KEY) == expected  # MTAs change case
    assert verp.parse_bounce_address(f"<{address}>", KEY) == expected
    assert verp.parse_bounce_address(address, OTHER_KEY) is None
    assert verp.parse_bounce_address(address, [OTHER_KEY, KEY]) == expected  # key rotation
    assert verp.parse_reply_address(address, KEY) is None  # a bounce token is no reply token


@settings(max_examples=300 * FUZZ)
@given(mail_id=ids, recipient_id=ids, position=st.integers(min_value=0),
       replacement=st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
def test_any_changed_character_is_rejected(mail_id, recipient_id, position, replacement):
    address = verp.make_bounce_address(mail_id=mail_id, recipient_id=recipient_id,
                                       domain="acme.example", key=KEY)
    local, domain = address.split("@")
    token = local.split("+", 1)[1]
    index = position % len(token)
    if token[index] == replacement:
        return
    forged = token[:index] + replacement + token[index + 1:]
    assert verp.parse_bounce_address(f"bounce+{forged}@{domain}", KEY) is None


@settings(max_examples=200 * FUZZ)
@given(st.text(max_size=80))
def test_garbage_never_raises(text):
    assert verp.parse_bounce_address(text, KEY) is None
    assert verp.parse_bounce_address(f"bounce+{text}@acme.example", KEY) is None
    assert verp.parse_reply_token(text, KEY) is None


@settings(max_examples=200 * FUZZ)
@given(thread=st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=3))
def test_reply_tokens_round_trip(thread):
    token = verp.make_reply_token(*thread, key=KEY)
    assert verp.parse_reply_token(token, KEY) == tuple(thread)
    assert verp.parse_reply_token(token.upper(), KEY) == tuple(thread)
    assert verp.parse_reply_token(token, OTHER_KEY) is None
    address = verp.make_reply_address("catchall", *thread, domain="acme.example", key=KEY)
    assert verp.parse_reply_address(address, KEY) == tuple(thread)
    assert verp.parse_reply_address(address, KEY, local="CATCHALL") == tuple(thread)
    assert verp.parse_reply_address(address, KEY, local="other") is None
    assert verp.parse_bounce_address(address, KEY) is None


def test_tokens_are_short_for_realistic_ids():
    address = verp.make_bounce_address(mail_id=1_234_567, recipient_id=7_654_321,
                                       domain="acme.example", key=KEY)
    assert len(address.split("@")[0]) == len("bounce+") + 28
    assert len(verp.make_reply_token(42, 123_456, key=KEY)) <= 30


def test_truncated_and_foreign_addresses_are_rejected():
    address = verp.make_bounce_address(mail_id=5, recipient_id=9, domain="acme.example",
                                       key=KEY)
    local, domain = address.split("@")
    for bad in [local[:-1] + "@" + domain, local + "a@" + domain, "bounce@acme.example",
                "bounce+@acme.example", "postmaster@acme.example", local,
                local.replace("+", "-") + "@" + domain, ""]:
        assert verp.parse_bounce_address(bad, KEY) is None, bad
    assert verp.parse_bounce_address(address, KEY, local="bounce") == (5, 9)
    assert verp.parse_bounce_address(address, KEY, local="returns") is None


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        verp.make_bounce_address(mail_id=1, recipient_id=None, domain="a.example", key=b"short")
    with pytest.raises(ValueError, match="non-negative"):
        verp.make_bounce_address(mail_id=-1, recipient_id=None, domain="a.example", key=KEY)
    with pytest.raises(ValueError, match="non-negative"):
        verp.make_reply_token(True, key=KEY)
    with pytest.raises(ValueError, match="local part"):
        verp.make_bounce_address("a+b", mail_id=1, recipient_id=None, domain="a.example",
                                 key=KEY)
    with pytest.raises(ValueError, match="longer than 64"):
        verp.make_bounce_address("x" * 40, mail_id=2**62, recipient_id=2**62,
                                 domain="a.example", key=KEY)
    with pytest.raises(ValueError, match="domain"):
        verp.make_bounce_address(mail_id=1, recipient_id=None, domain="a.example\r\n", key=KEY)
    with pytest.raises(ValueError, match="at least one"):
        verp.make_reply_token(key=KEY)
