"""TLS for outgoing SMTP: the context each connection uses, never weaker than TLS 1.2, with
the server's client certificate when it authenticates by certificate."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable

from mailroom.outgoing.models import FailureType, MailServer
from mailroom.outgoing.smtp.smtp_errors import AUTH, SmtpError

SslContextSource = ssl.SSLContext | Callable[[], ssl.SSLContext] | None


def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def client_context(server: MailServer, source: SslContextSource) -> ssl.SSLContext:
    """The TLS context for one connection to `server`: `source` (or the system CAs), at least
    TLS 1.2, verification off only when the server says so, its client certificate loaded."""
    if source is None:
        context = default_ssl_context()
    elif isinstance(source, ssl.SSLContext):
        context = source
    else:
        context = source()
    context.minimum_version = max(context.minimum_version, ssl.TLSVersion.TLSv1_2)
    if not server.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if server.auth == MailServer.Auth.CERTIFICATE:
        _load_client_certificate(server, context)
    return context


def _load_client_certificate(server: MailServer, context: ssl.SSLContext) -> None:
    """ssl only loads PEM from files: write them to a private temp dir for a moment."""
    if not server.client_certificate or not server.client_key:
        raise SmtpError(AUTH, FailureType.AUTHENTICATION,
                        "Client-certificate authentication is chosen but the certificate "
                        "or its private key is missing.", temporary=False, server_fault=True)
    with tempfile.TemporaryDirectory(prefix="mailroom-cert-") as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, text in ((cert, server.client_certificate),
                           (key, server.client_key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, ValueError) as exc:
            raise SmtpError(AUTH, FailureType.AUTHENTICATION,
                            f"The client certificate or key cannot be loaded: {exc}",
                            temporary=False, server_fault=True) from exc
