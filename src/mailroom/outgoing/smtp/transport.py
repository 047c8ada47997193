"""SMTP transport: one connection to one MailServer, over smtplib.

The interface is small, like Django's mail backends: `open()`, `send(envelope_from, rcpts,
raw) -> SendResult` (one result per recipient), `close()`. Every failure is classified into a
`FailureType` with a reason in plain words and a stage (dns, tcp, tls, auth, sender,
recipient, data), so the hub, the circuit breaker and `test_connection` all speak the same
language.

Security rules, not options: certificates are verified (system CAs, hostname checked,
TLS ≥ 1.2) unless the server says `verify_certificate=False`; STARTTLS that the server does not
offer is a refusal, never a silent downgrade; credentials are never sent over an unencrypted
connection. Nothing here touches the database; the sender and the UI call it from threads.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from functools import lru_cache

from mailroom.core import oauth
from mailroom.outgoing.models import FailureType, MailServer
from mailroom.outgoing.smtp.envelope import build_envelope
from mailroom.outgoing.smtp.smtp_errors import (
    AUTH,
    DATA,
    DNS,
    RECIPIENT,
    SENDER,
    TCP,
    TLS,
    RecipientResult,
    SendResult,
    SmtpError,
    _decode,
    _human_size,
    _reason,
    _underlying,
    _xoauth2_error,
    classify_reply,
    closing,
    dot_stuffed,
    recipient_result,
)
from mailroom.outgoing.smtp.tls import SslContextSource, client_context


@lru_cache(maxsize=1)
def local_hostname() -> str:
    """The EHLO name. smtplib would call socket.getfqdn() for every connection, which can
    block on DNS; once per process is enough."""
    from django.conf import settings

    return getattr(settings, "MAILROOM_EHLO_HOSTNAME", None) or socket.getfqdn()


class SmtpConnection:
    """One SMTP session with `server`; reusable for many messages until `close()`.

    `ssl_context` replaces the default context (system CAs): an `SSLContext`, or a callable
    returning a fresh one per connection (tests pass one trusting their own CA). Verification
    is only ever turned off by `server.verify_certificate = False`.
    """

    def __init__(self, server: MailServer, *, timeout: float = 30,
                 ssl_context: SslContextSource = None, record: bool = False,
                 oauth_token: str | None = None) -> None:
        self.server = server
        self.timeout = timeout
        self._ssl_source = ssl_context
        # the sender fetches XOAUTH2 tokens in its main thread (they live in the database)
        self.oauth_token = oauth_token
        self.smtp: smtplib.SMTP | None = None
        self.size_limit: int | None = None
        self.transcript: list[str] | None = [] if record else None
        self.messages_sent = 0
        self.stage = TCP  # how far open() got; errors are reported at this stage

    # --- transcript ------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if self.transcript is not None:
            self.transcript.append(line[:500])

    def _reply(self, code: int, reply: bytes | str) -> str:
        text = _decode(reply)
        self._log(f"S: {code} {text}")
        return text

    # --- opening ---------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return client_context(self.server, self._ssl_source)

    def open(self) -> None:
        """Connect, greet, negotiate TLS and authenticate. Raises SmtpError (server_fault)."""
        server = self.server
        host, port = server.host, server.port
        where = f"{host}:{port}"
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise SmtpError(DNS, FailureType.UNREACHABLE,
                            f"The server name {host} could not be found (DNS): "
                            f"{getattr(exc, 'strerror', None) or exc}.",
                            server_fault=True) from exc
        context = None
        if server.security in (MailServer.Security.SSL, MailServer.Security.STARTTLS):
            context = self.ssl_context()
        self.stage = TCP
        try:
            if server.security == MailServer.Security.SSL:
                smtp: smtplib.SMTP = _SMTP_SSL(self, local_hostname=local_hostname(),
                                               timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(local_hostname=local_hostname(), timeout=self.timeout)
            smtp._host = host  # smtplib names the TLS peer after it; connect() leaves it unset
            self.smtp = smtp
            self._log(f"C: connect {where} ({server.get_security_display()})")
            code, reply = smtp.connect(host, port)
            self.stage = TCP
            text = self._reply(code, reply)
            if code != 220:
                raise SmtpError(TCP, FailureType.UNREACHABLE,
                                f"The server answered the connection with {code} {text}"
                                f" instead of a greeting; it is busy or refuses us.",
                                code=code, reply=text, temporary=code < 500, server_fault=True)
            self._ehlo()
            if server.security == MailServer.Security.STARTTLS:
                self.stage = TLS
                if not smtp.has_extn("starttls"):
                    raise SmtpError(TLS, FailureType.TLS,
                                    f"{where} does not offer STARTTLS, and this server is set "
                                    f"to require it; nothing was sent (the password either).",
                                    server_fault=True)
                self._log("C: STARTTLS")
                code, reply = smtp.starttls(context=context)
                self._reply(code, reply)
                self._ehlo()
            self.stage = AUTH
            self._authenticate()
        except Exception as exc:
            self.close()
            if isinstance(exc, SmtpError):
                raise
            raise self._open_error(exc, where) from exc

    def _open_error(self, exc: Exception, where: str) -> SmtpError | Exception:
        """What went wrong while opening, in plain words. smtplib wraps socket and TLS errors
        that happen while reading a reply into SMTPServerDisconnected: look underneath."""
        stage, host = self.stage, self.server.host
        cause = _underlying(exc)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return SmtpError(TLS, FailureType.TLS,
                             f"The certificate of {host} could not be verified "
                             f"({cause.verify_message or cause.reason}); nothing was sent.",
                             server_fault=True)
        if isinstance(cause, ssl.SSLError):
            return SmtpError(TLS, FailureType.TLS,
                             f"The TLS negotiation with {where} failed "
                             f"({cause.reason or cause}).", server_fault=True)
        if isinstance(cause, TimeoutError):
            return SmtpError(stage, FailureType.UNREACHABLE,
                             f"{where} did not answer within {self.timeout:g} s.",
                             server_fault=True)
        if isinstance(exc, smtplib.SMTPResponseException):
            text = self._reply(exc.smtp_code, exc.smtp_error)
            return SmtpError(stage, FailureType.TLS if stage == TLS else FailureType.UNREACHABLE,
                             f"The server refused {'STARTTLS' if stage == TLS else 'us'}: "
                             f"{exc.smtp_code} {text}", code=exc.smtp_code, reply=text,
                             temporary=exc.smtp_code < 500, server_fault=True)
        if isinstance(cause, ConnectionRefusedError):
            return SmtpError(TCP, FailureType.UNREACHABLE,
                             f"{where} refused the connection (nothing listens on that port, "
                             f"or a firewall says no).", server_fault=True)
        if isinstance(exc, smtplib.SMTPServerDisconnected) or isinstance(cause, ConnectionError):
            return SmtpError(stage, FailureType.TLS if stage == TLS else FailureType.UNREACHABLE,
                             f"{where} closed the connection during "
                             f"{'TLS negotiation' if stage == TLS else stage} ({exc}).",
                             server_fault=True)
        if isinstance(cause, OSError):
            return SmtpError(stage, FailureType.UNREACHABLE,
                             f"{where} cannot be reached: {cause.strerror or cause}.",
                             server_fault=True)
        return exc  # a bug, not a server problem: let it surface

    def _ehlo(self) -> None:
        smtp = self.smtp
        self._log(f"C: EHLO {local_hostname()}")
        code, reply = smtp.ehlo()
        text = self._reply(code, reply.splitlines()[0] if reply else b"")
        if code != 250:
            self._log("C: HELO")
            code, reply = smtp.helo()
            text = self._reply(code, reply)
            if code != 250:
                raise SmtpError(TCP, FailureType.UNREACHABLE,
                                f"The server refused our greeting: {code} {text}", code=code,
                                reply=text, temporary=code < 500, server_fault=True)
        size = smtp.esmtp_features.get("size", "").strip()
        self.size_limit = int(size) if size.isdigit() and int(size) > 0 else None

    def _authenticate(self) -> None:
        server, smtp = self.server, self.smtp
        if server.auth in (MailServer.Auth.NONE, MailServer.Auth.CERTIFICATE):
            return
        if server.security == MailServer.Security.NONE:
            raise SmtpError(AUTH, FailureType.AUTHENTICATION,
                            "Credentials are never sent over an unencrypted connection: choose "
                            "STARTTLS or SSL/TLS for this server.", temporary=False,
                            server_fault=True)
        if not smtp.has_extn("auth"):
            raise SmtpError(AUTH, FailureType.AUTHENTICATION,
                            "The server does not offer authentication (no AUTH after EHLO).",
                            temporary=False, server_fault=True)
        offered = smtp.esmtp_features["auth"].upper().split()
        try:
            if server.auth == MailServer.Auth.XOAUTH2:
                token = self.oauth_token or _fetch_oauth_token(server)
                payload = f"user={server.username}\x01auth=Bearer {token}\x01\x01"
                self._log("C: AUTH XOAUTH2 ****")
                # on failure the server sends a 334 JSON challenge; answer it with an empty line
                code, reply = smtp.auth(
                    "XOAUTH2", lambda challenge=None: payload if challenge is None else "",
                    initial_response_ok=True)
            else:
                mechanism = "PLAIN" if "PLAIN" in offered or "LOGIN" not in offered else "LOGIN"
                self._log(f"C: AUTH {mechanism} {server.username} ****")
                smtp.user, smtp.password = server.username, server.password
                code, reply = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"),
                                        initial_response_ok=True)
            self._reply(code, reply)
        except smtplib.SMTPAuthenticationError as exc:
            text = self._reply(exc.smtp_code, exc.smtp_error)
            if server.auth == MailServer.Auth.XOAUTH2 and text:
                text = _xoauth2_error(text)
            raise SmtpError(AUTH, FailureType.AUTHENTICATION,
                            f"The server refused the credentials of {server.username or 'the'}"
                            f" account: {exc.smtp_code} {text}", code=exc.smtp_code, reply=text,
                            temporary=exc.smtp_code < 500, server_fault=True) from exc
        finally:
            smtp.user = smtp.password = None  # type: ignore[assignment]

    # --- sending ---------------------------------------------------------------------------

    def send(self, envelope_from: str, rcpts: Sequence[str], raw: bytes, *,
             utf8_raw: bytes | None = None) -> SendResult:
        """Send one message; one RecipientResult per address in `rcpts`.

        `raw` has ASCII headers; `utf8_raw`, when the message has internationalised
        addresses, the same message with UTF-8 headers (RFC 6532), sent instead when the
        server offers SMTPUTF8. Domains go out as IDNA A-labels; a recipient whose local part
        is not ASCII fails alone when the server does not offer SMTPUTF8 (envelope.py).

        Refusals are results, not exceptions. SmtpError means the connection is gone (lost, or
        the server said 421): the caller reopens, and a message cut off in DATA counts as not
        delivered (it is retried with the same Message-ID).
        """
        smtp = self.smtp
        if smtp is None:
            raise SmtpError(TCP, FailureType.UNREACHABLE, "The connection is not open.")
        offered = smtp.has_extn("smtputf8")
        envelope = build_envelope(envelope_from, rcpts, smtputf8_offered=offered)
        if offered and utf8_raw is not None:
            raw = utf8_raw
        smtputf8 = envelope.smtputf8 or (offered and utf8_raw is not None)
        started = time.monotonic()
        limit = self.size_limit
        if self.server.max_message_size:
            limit = min(x for x in (limit, self.server.max_message_size) if x)
        if limit and len(raw) > limit:
            reason = (f"The message is {_human_size(len(raw))}; {self.server.name} accepts at "
                      f"most {_human_size(limit)}. Nothing was sent.")
            return SendResult([RecipientResult(a, False, failure_type=FailureType.TOO_LARGE,
                                               reason=reason) for a in rcpts], reply=reason)
        if not envelope.rcpts:
            results = envelope.merge(rcpts, [])
            return SendResult(results, reply=results[0].reason if results else "")
        options = []
        if "size" in smtp.esmtp_features:
            options.append(f"SIZE={len(raw)}")
        if not raw.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if smtputf8:
            options.append("SMTPUTF8")
        # smtplib writes commands as ASCII unless told otherwise (as its sendmail() does)
        smtp.command_encoding = "utf-8" if smtputf8 else "ascii"
        try:
            result = self._transaction(envelope.sender, envelope.rcpts, raw, options)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            cause = _underlying(exc)
            if isinstance(cause, TimeoutError):
                message = (f"The server did not answer within {self.timeout:g} s; the message "
                           f"counts as not delivered.")
            elif isinstance(exc, smtplib.SMTPServerDisconnected):
                message = ("The server closed the connection before confirming the message "
                           f"({exc or 'disconnected'}).")
            else:
                message = f"The connection broke: {getattr(cause, 'strerror', None) or cause}."
            raise SmtpError(self.stage, FailureType.UNREACHABLE, message) from exc
        result.duration_ms = int((time.monotonic() - started) * 1000)
        for index, recipient in zip(envelope.sendable, result.recipients, strict=True):
            recipient.address = rcpts[index]  # the caller's spelling, not the wire's
        if envelope.refused:
            result.recipients = envelope.merge(rcpts, result.recipients)
        if result.code == 421:
            self.close()
        else:
            self.messages_sent += 1
        return result

    def _transaction(self, envelope_from: str, rcpts: Sequence[str], raw: bytes,
                     options: list[str]) -> SendResult:
        if self.smtp.has_extn("pipelining"):
            return self._pipelined_transaction(envelope_from, rcpts, raw, options)
        smtp = self.smtp
        self.stage = SENDER
        # docmd, not smtp.mail()/rcpt(): those re-parse every address with email.utils
        # (~20 µs each); ours are validated at enqueue and never hold CR, LF or "<>"
        code, reply = smtp.docmd("mail", f"FROM:<{envelope_from}>"
                                 + "".join(" " + o for o in options))
        if code != 250:
            return self._sender_refused(rcpts, code, reply)
        results: list[RecipientResult] = []
        self.stage = RECIPIENT
        for address in rcpts:
            code, reply = smtp.docmd("rcpt", f"TO:<{address}>")
            results.append(recipient_result(address, code, reply))
            if code == 421:
                break
        if len(results) < len(rcpts):  # 421: the server is closing; the rest wait too
            return closing(results, rcpts)
        if not any(r.accepted for r in results):
            self._rset(results[-1].code)
            return SendResult(results, results[-1].code, results[-1].reply)
        self.stage = DATA
        try:
            code, reply = smtp.data(raw)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
            code, reply = exc.smtp_code, exc.smtp_error
        return self._data_outcome(results, code, reply)

    def _pipelined_transaction(self, envelope_from: str, rcpts: Sequence[str], raw: bytes,
                               options: list[str]) -> SendResult:
        """RFC 2920: MAIL, every RCPT and DATA in one write, then the replies in order.

        Two round trips per message instead of 3 + recipients; over a WAN (or to a busy
        server) this is most of the time a message takes.
        """
        smtp = self.smtp
        self.stage = SENDER
        commands = [f"MAIL FROM:<{envelope_from}>" + "".join(" " + o for o in options)]
        commands += [f"RCPT TO:<{address}>" for address in rcpts]
        commands.append("DATA")
        smtp.send(("\r\n".join(commands) + "\r\n").encode())
        mail_code, mail_reply = smtp.getreply()
        if mail_code == 421:
            return self._sender_refused(rcpts, mail_code, mail_reply)
        self.stage = RECIPIENT
        results: list[RecipientResult] = []
        for address in rcpts:
            code, reply = smtp.getreply()
            if code == 421:  # the server is closing: no more replies will come
                results.append(recipient_result(address, code, reply))
                return closing(results, rcpts)
            results.append(recipient_result(address, code, reply))
        data_code, data_reply = smtp.getreply()
        accepted = mail_code == 250 and any(r.accepted for r in results)
        if data_code == 354 and not accepted:
            # RFC 2920 §3.1: the server took DATA though no recipient is valid: end it empty
            smtp.send(b".\r\n")
            data_code, data_reply = smtp.getreply()
        if mail_code != 250:
            return self._sender_refused(rcpts, mail_code, mail_reply)
        if not accepted:
            self._rset(results[-1].code)
            return SendResult(results, results[-1].code, results[-1].reply)
        if data_code != 354:
            return self._data_outcome(results, data_code, data_reply)
        self.stage = DATA
        smtp.send(dot_stuffed(raw))
        code, reply = smtp.getreply()
        return self._data_outcome(results, code, reply)

    def _sender_refused(self, rcpts: Sequence[str], code: int, reply: bytes) -> SendResult:
        text = _decode(reply)
        failure_type, temporary = classify_reply(SENDER, code, text)
        reason = _reason(SENDER, code, text)
        self._rset(code)
        return SendResult([RecipientResult(a, False, code, text, temporary, failure_type,
                                           reason) for a in rcpts], code, text)

    def _data_outcome(self, results: list[RecipientResult], code: int,
                      reply: bytes) -> SendResult:
        """The final reply decides for every recipient accepted at RCPT."""
        text = _decode(reply)
        if code != 250:
            failure_type, temporary = classify_reply(DATA, code, text)
            reason = _reason(DATA, code, text)
            for r in results:
                if r.accepted:
                    r.accepted, r.code, r.reply = False, code, text
                    r.temporary, r.failure_type, r.reason = temporary, failure_type, reason
            self._rset(code)
        return SendResult(results, code, text)

    def _rset(self, code: int | None) -> None:
        """Leave the session clean for the next message (or close it if it is broken)."""
        if code == 421:
            return
        try:
            smtp_code = self.smtp.rset()[0]
        except (smtplib.SMTPException, OSError):
            smtp_code = 0
        if smtp_code != 250:
            self.close()

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    @property
    def is_open(self) -> bool:
        return self.smtp is not None

    def pool_key(self) -> tuple:
        return pool_key(self.server)

    def __enter__(self) -> SmtpConnection:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def pool_key(server: MailServer) -> tuple:
    """Connections are only reused for the same server with the same settings."""
    return (server.pk, server.host, server.port, server.security, server.verify_certificate,
            server.auth, server.username, server.password, server.client_certificate,
            server.client_key)


class _SMTP_SSL(smtplib.SMTP_SSL):
    """SMTP_SSL that tells its connection when TCP is up, so a failed handshake is reported
    as TLS and not as a network problem."""

    def __init__(self, connection: SmtpConnection, **kwargs) -> None:
        self._connection = connection
        super().__init__(**kwargs)

    def _get_socket(self, host, port, timeout):
        sock = smtplib.SMTP._get_socket(self, host, port, timeout)
        self._connection.stage = TLS
        return self.context.wrap_socket(sock, server_hostname=self._host)


def _fetch_oauth_token(server: MailServer) -> str:
    try:
        return oauth.access_token(server)
    except Exception as exc:  # OAuthError and friends: a reason in plain words
        raise SmtpError(AUTH, FailureType.AUTHENTICATION, str(exc),
                        temporary=getattr(exc, "temporary", True), server_fault=True) from exc
