"""A real Dovecot (IMAP + POP3) on loopback for the fetcher tests, and a proxy that cuts
connections on cue.

`Dovecot.start()` writes a throwaway configuration into a temporary directory and runs
`/usr/sbin/dovecot -F -c <dir>/dovecot.conf` as a child process: one user with a plain
password (passwd-file), maildir storage under `<dir>/mail/<user>`, plain and implicit-TLS
listeners for IMAP and POP3 on free loopback ports, a certificate issued for 127.0.0.1 and
localhost by a throwaway `trustme` CA (`ca_pem`). Everything runs as the current user, so the
tests can write messages straight into the maildir (`deliver`) and read flags back from the
file names (`flags`).

`CuttingProxy` forwards a loopback port to one of Dovecot's and closes both sides when the
client sends the n-th line starting with a given command (e.g. the 2nd `UID STORE`), or once
the server has sent n bytes: a connection dropped mid-fetch, at a precise point.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"
USER = "fetcher@acme.test"
PASSWORD = "s3cret-pass"


def available() -> bool:
    return os.path.exists(DOVECOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{root}/mail/%u
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
mail_fsync = never
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {root}/oauth2.conf
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # no auth penalty: the wrong-password tests would wait up to 15 s per failed login
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
service stats {{
  user = {user}
}}
{extra}
"""


@dataclass
class Dovecot:
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    extra_config: str = ""
    root: Path = field(init=False)
    ports: dict[str, int] = field(default_factory=dict)
    ca_pem: str = ""
    mail_uid: int = -1
    mail_gid: int = -1
    oauth_tokens: set[str] = field(default_factory=lambda: {"valid-access-token"})
    _process: subprocess.Popen | None = None

    # --- lifecycle ---

    def start(self) -> Dovecot:
        import pwd

        import trustme

        self.root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        self.ca_pem = ca.cert_pem.bytes().decode()
        self.root.chmod(0o755)  # login and anvil processes run unprivileged
        uid, gid = os.getuid(), os.getgid()
        name = pwd.getpwuid(uid).pw_name
        # Dovecot refuses to run login processes as root: use its own users when present
        internal = login = name
        if uid == 0:
            internal = _existing_user("dovecot", "nobody")
            login = _existing_user("dovenull", "nobody")
        if uid == 0:  # Dovecot will not open mailboxes as root: they belong to its user
            owner = pwd.getpwnam(internal)
            self.mail_uid, self.mail_gid = owner.pw_uid, owner.pw_gid
        else:
            self.mail_uid, self.mail_gid = uid, gid
        (self.root / "users").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{self.mail_uid}:{self.mail_gid}::"
            f"{self.root}/home::\n")
        self._start_introspection()
        (self.root / "oauth2.conf").write_text(
            "introspection_mode = post\n"
            f"introspection_url = http://127.0.0.1:{self._introspection.server_port}/\n"
            "username_attribute = username\nactive_attribute = active\n"
            "active_value = true\n")
        self.ports = {k: free_port() for k in ("imap", "imaps", "pop3", "pops")}
        (self.root / "dovecot.conf").write_text(CONFIG.format(
            root=self.root, user=name, internal=internal, login=login, imap=self.ports["imap"],
            imaps=self.ports["imaps"], pop3=self.ports["pop3"], pop3s=self.ports["pops"],
            extra=self.extra_config))
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"))
        atexit.register(self.stop)  # even when the test run is interrupted
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            if all(_listening(self.host, p) for p in self.ports.values()):
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"dovecot did not start: {self.log()}")
        self.reset()
        return self

    def _start_introspection(self) -> None:
        """The OAuth token introspection endpoint Dovecot asks (RFC 7662): the tokens in
        `oauth_tokens` are active and belong to the user."""
        import json
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, HTTPServer

        harness = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = urllib.parse.parse_qs(body.decode()).get("token", [""])[0]
                answer = ({"active": "true", "username": harness.user}
                          if token in harness.oauth_tokens else {"active": "false"})
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._introspection = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._introspection.serve_forever,
                         kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if getattr(self, "_introspection", None) is not None:
            self._introspection.shutdown()
            self._introspection.server_close()
            self._introspection = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        text = ""
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")[-4000:]
        return text

    # --- the mailbox ---

    def maildir(self, folder: str = "INBOX") -> Path:
        base = self.root / "mail" / self.user
        return base if folder == "INBOX" else base / f".{folder.replace('/', '.')}"

    def reset(self) -> None:
        """An empty INBOX (and no other folder); new UIDs from 1."""
        self.kill_connections()
        shutil.rmtree(self.root / "mail", ignore_errors=True)
        self.create_folder("INBOX")

    def create_folder(self, folder: str) -> Path:
        path = self.maildir(folder)
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.root / "mail")
        return path

    def _own(self, top: Path) -> None:
        """Hand what the test wrote to the mailbox owner (only matters when run as root)."""
        if os.getuid() != 0:
            return
        for path in [top, *top.rglob("*")]:
            os.chown(path, self.mail_uid, self.mail_gid)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> str:
        """Drop one message into the maildir's new/ (what an MDA does); returns its name."""
        name = f"{time.time_ns()}.M{uuid.uuid4().hex[:12]}P{os.getpid()}.mailroomtest"
        tmp = self.maildir(folder) / "tmp" / name
        tmp.write_bytes(raw)
        self._own(tmp)
        os.rename(tmp, self.maildir(folder) / "new" / name)
        return name

    def messages(self, folder: str = "INBOX") -> dict[str, str]:
        """{file name: maildir flags} of every message in the folder."""
        result = {}
        for sub in ("new", "cur"):
            directory = self.maildir(folder) / sub
            if not directory.exists():
                continue
            for path in directory.iterdir():
                base, _, info = path.name.partition(":2,")
                result[base] = info
        return result

    def count(self, folder: str = "INBOX") -> int:
        return len(self.messages(folder))

    def count_unseen(self, folder: str = "INBOX") -> int:
        return sum("S" not in flags for flags in self.messages(folder).values())

    def change_uidvalidity(self, *, forget_flags: bool = True) -> None:
        """What a recreated or restored mailbox looks like: a new UIDVALIDITY, UIDs numbered
        again from 1 and (by default) every message unread again."""
        self.kill_connections()
        inbox = self.maildir()
        uidlist = inbox / "dovecot-uidlist"
        old = 0
        if uidlist.exists():
            match = re.match(r"\d+ V(\d+)", uidlist.read_text())
            old = int(match.group(1)) if match else 0
            uidlist.unlink()
        for path in list((inbox / "cur").iterdir()):
            base = path.name.partition(":2,")[0]
            path.rename(inbox / "new" / base if forget_flags else path)
        for index in inbox.glob("dovecot.index*"):
            index.unlink()
        (inbox / "dovecot-uidlist").write_text(
            f"3 V{old + 1000} N1 G{uuid.uuid4().hex}\n")
        self._own(inbox)

    def kill_connections(self) -> None:
        """End every open IMAP/POP3 session (`doveadm kick` would need the admin socket)."""
        if self._process is None:
            return
        # only this Dovecot's own mail processes: children of its master, by pid
        children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            return
        for pid in pids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ("imap", "pop3"):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    # --- an IMAP view for assertions ---

    def imap(self):
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.ports["imap"], ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client


def _existing_user(*names: str) -> str:
    import pwd

    for name in names:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError(f"none of these users exists: {', '.join(names)}")


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def client_context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=ca_pem)
    return context


class CuttingProxy:
    """A loopback TCP proxy to `target_port` that drops the connection on cue.

    cut_on=(b"UID STORE", 2): close both sides instead of forwarding the client's 2nd line
    that starts with "<tag> UID STORE" (IMAP) or with "QUIT" (POP3, no tag). cut_after_bytes:
    close once the server has sent that many bytes to the client. Only the first
    `connections_to_cut` connections are cut; later ones are forwarded intact.
    """

    def __init__(self, target_port: int, *, cut_on: tuple[bytes, int] | None = None,
                 cut_after_bytes: int | None = None, connections_to_cut: int = 1) -> None:
        self.target_port = target_port
        self.cut_on = cut_on
        self.cut_after_bytes = cut_after_bytes
        self.connections_to_cut = connections_to_cut
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stopping = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            armed = self.cuts < self.connections_to_cut
            state = {"seen": 0, "sent": 0, "closed": False}
            threading.Thread(target=self._pump, args=(client, server, True, armed, state),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False, armed, state),
                             daemon=True).start()

    def _cut(self, a: socket.socket, b: socket.socket, state: dict) -> None:
        if not state["closed"]:
            state["closed"] = True
            self.cuts += 1
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool, armed: bool,
              state: dict) -> None:
        buffer = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._cut(src, dst, state) if not state["closed"] else None
                return
            if armed and upstream and self.cut_on:
                buffer += data
                lines = buffer.split(b"\r\n")
                buffer = lines.pop()
                command, nth = self.cut_on
                for line in lines:
                    words = line.split(b" ", 1)
                    rest = words[1] if len(words) > 1 and command != b"QUIT" else line
                    if rest.upper().startswith(command):
                        state["seen"] += 1
                        if state["seen"] >= nth:
                            self._cut(src, dst, state)
                            return
            if armed and not upstream and self.cut_after_bytes is not None:
                if state["sent"] + len(data) >= self.cut_after_bytes:
                    dst.sendall(data[:self.cut_after_bytes - state["sent"]])
                    self._cut(src, dst, state)
                    return
                state["sent"] += len(data)
            try:
                dst.sendall(data)
            except OSError:
                return
