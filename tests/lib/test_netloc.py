"""Where a secret may travel: https anywhere, plain http only to this machine."""

from __future__ import annotations

import pytest

from mailroom.lib.netloc import is_loopback, secure_url


@pytest.mark.parametrize(("url", "ok"), [
    ("https://api.lob.com", True),
    ("https://api.pingen.com/v2", True),
    ("http://127.0.0.1:8025/v1", True),
    ("http://localhost:9000", True),
    ("http://[::1]:9000/x", True),
    ("http://127.8.9.10/", True),
    ("http://api.lob.com", False),  # a secret in clear over the internet
    ("http://10.0.0.5/", False),
    ("http://localhost.evil.example/", False),
    ("ftp://127.0.0.1/", False),
    ("https://", False),
    ("api.lob.com", False),
])
def test_secure_url(url, ok):
    assert secure_url(url) is ok


def test_is_loopback():
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("example.com") and not is_loopback("192.168.1.1")
