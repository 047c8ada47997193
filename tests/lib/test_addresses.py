"""lib.addresses' fast path (`plain_sendable`) proven against email_validator: whatever it
accepts, the library accepts too and normalises to the same address; what it declines, the
library still decides (valid or not, the answer is the library's)."""

from __future__ import annotations

import email_validator
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailroom.lib.addresses import (
    InvalidAddress,
    normalize_email,
    plain_sendable,
    sendable_email,
)

ATOM = st.text("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-.", min_size=1,
               max_size=70)
LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=66)
TLD = st.sampled_from(["com", "de", "example", "test", "local", "onion", "c", "c0m",
                       "photography", "xn--p1ai", "arpa", "io"])
NOISE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=3)


@st.composite
def addresses(draw) -> str:
    local = draw(ATOM)
    labels = draw(st.lists(LABEL, min_size=1, max_size=4))
    address = f"{local}@{'.'.join(labels)}.{draw(TLD)}"
    if draw(st.booleans()):  # now and then something no plain address has
        position = draw(st.integers(0, len(address)))
        address = address[:position] + draw(NOISE) + address[position:]
    return address


def _library(value: str) -> str | None:
    try:
        result = email_validator.validate_email(value.strip(), check_deliverability=False,
                                                allow_smtputf8=True)
    except email_validator.EmailNotValidError:
        return None
    return result.normalized


@settings(max_examples=3000, deadline=None)
@given(addresses())
@example("0@00--0.com")  # found by this test: IDNA's reserved hyphens
def test_what_the_fast_path_accepts_the_library_accepts_unchanged(value):
    if plain_sendable(value):
        assert _library(value) == value
        local = value.rpartition("@")[0]
        assert len(local) <= 64


@settings(max_examples=1000, deadline=None)
@given(addresses())
def test_the_answers_are_the_librarys_either_way(value):
    expected = _library(value)
    if expected is None:
        with pytest.raises(InvalidAddress):
            normalize_email(value)
    else:
        assert normalize_email(value) == expected


def test_the_usual_addresses_take_the_fast_path_and_special_ones_do_not():
    assert plain_sendable("ada.lovelace+news@client.example.com")
    assert not plain_sendable("Ada@client.example")  # case: the library decides
    assert not plain_sendable("ada@shop.test")  # special-use: the library refuses it
    assert not plain_sendable("ada@xn--80ak6aa92e.com")  # IDNA: the library checks it
    assert not plain_sendable(f"{'a' * 65}@client.example")
    assert not plain_sendable("0@00--0.com")  # hyphens 3-4 are IDNA's: the library refuses
    with pytest.raises(InvalidAddress):
        sendable_email("0@00--0.com")
    with pytest.raises(InvalidAddress):
        sendable_email("ada@shop.test")
    assert sendable_email(" ada@client.example ") == "ada@client.example"
