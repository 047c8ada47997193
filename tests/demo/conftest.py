"""The demo tests never touch the catcher's real port: each test gets a free loopback port as
MAILROOM_MAIL_CATCHER (the seeder's demo server points there), and `catcher` listens on it."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def catcher_address(settings):
    settings.MAILROOM_MAIL_CATCHER = f"127.0.0.1:{free_port()}"
    return settings.MAILROOM_MAIL_CATCHER


@pytest.fixture
def catcher(catcher_address):
    from mailroom.demo import services
    from mailroom.demo.catcher import Catcher

    host, port = services.catcher_address()
    with Catcher(host, port, store=services.catch) as running:
        yield running
