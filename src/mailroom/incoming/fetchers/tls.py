"""The TLS context for a mailbox: the system CAs, plus the server's own CA when one is set.

Certificate checks are only turned off when an admin unticked "verify certificate"
(`verify_certificate=False`); a pasted CA certificate is the better answer for a private
server, and adds to the system CAs rather than replacing them.
"""

from __future__ import annotations

import ssl

from mailroom.incoming.fetchers.base import FetchError
from mailroom.incoming.models import IncomingServer


def ssl_context(server: IncomingServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if server.ca_certificate.strip():
        try:
            context.load_verify_locations(cadata=server.ca_certificate.strip())
        except (ssl.SSLError, ValueError) as exc:
            raise FetchError("The CA certificate in the server settings is not a valid PEM "
                             f"certificate ({exc}).") from None
    if not server.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
