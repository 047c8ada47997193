"""Numbers from query strings and forms: plain ASCII digits in range, or None."""

import pytest

from mailroom.lib.params import MAX_ID, parse_id, parse_ids, parse_int


@pytest.mark.parametrize("raw", ["", "abc", "-1", "0", "1.5", " 7", "+7", "1_000", "\u00b2",
                                 "\u0661", str(MAX_ID + 1), str(10**30), "9" * 5000, None, 7])
def test_parse_id_refuses_what_is_not_a_row_id(raw):
    assert parse_id(raw) is None


def test_parse_id_and_int_accept_plain_numbers():
    assert parse_id("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
    assert parse_int("0") == 0 and parse_int("11", maximum=10) is None


def test_parse_ids_is_all_or_nothing():
    assert parse_ids("1, 2,3,") == [1, 2, 3]
    assert parse_ids("1,\u00b2") is None and parse_ids("1,2", limit=1) is None
    assert parse_ids("") == []
