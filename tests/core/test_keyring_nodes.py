"""Real node processes and their keys (core.keyring): separate data dirs, one database.

Each PostgreSQL test gets a fresh database cloned from one template that `mailroom migrate`
made with the installation's keys in the environment (so the clone starts with the
fingerprints migrate recorded). Nodes run `mailroom check-keys`, `worker`, `gateway`, `web`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import premigrated
from tests.conftest import NEEDS_POSTGRES
from tests.core.nodes import K1, K2, SECRET, finish, node_env, run, start
from tests.core.test_processes import REPO, free_port

pytestmark = pytest.mark.slow

NODE_A = """
from django.core.management import call_command
call_command("check-keys")
from mailroom.core.models import Company
from mailroom.core.tokens import bounce_key
from mailroom.lib import verp
from mailroom.outgoing.models import DkimKey
company = Company.objects.create(name="Acme", email="hello@acme.test")
DkimKey.objects.create(company=company, domain="acme.test", private_key="PEM saved on A",
                       dns_txt="v=DKIM1")
print("VERP", verp.make_bounce_address(mail_id=42, recipient_id=7, domain="acme.test",
                                       key=bounce_key()))
"""

NODE_B = """
import sys
from django.core.management import call_command
call_command("check-keys")
from mailroom.core.tokens import bounce_key
from mailroom.lib import verp
from mailroom.outgoing.models import DkimKey
print("SECRET", DkimKey.objects.get(domain="acme.test").private_key)
print("PARSED", verp.parse_bounce_address(sys.argv[-1], bounce_key()))
"""


@NEEDS_POSTGRES
def test_two_nodes_with_the_same_keys_share_secrets_and_bounce_addresses(tmp_path, node_database):
    import psycopg

    with psycopg.connect(node_database) as conn:  # `mailroom migrate` recorded the fingerprints
        rows = conn.execute("SELECT kind, fingerprint FROM core_keyfingerprint").fetchall()
    assert sorted(kind for kind, _ in rows) == ["fernet", "secret", "token"]
    assert not any(SECRET in value or K1 in value for _, value in rows)

    env_a = node_env(tmp_path, "a", node_database)
    a = run(env_a, "shell", "--no-imports", "-c", NODE_A)
    assert a.returncode == 0, a.stdout + a.stderr
    address = next(line.split()[1] for line in a.stdout.splitlines() if line.startswith("VERP"))

    env_b = node_env(tmp_path, "b", node_database)
    assert env_a["MAILROOM_DATA_DIR"] != env_b["MAILROOM_DATA_DIR"]
    b = run(env_b, "shell", "--no-imports", "-c", NODE_B + f"\nsys.argv.append({address!r})")
    assert b.returncode == 0, b.stdout + b.stderr
    assert "SECRET PEM saved on A" in b.stdout
    assert "PARSED (42, 7)" in b.stdout
    # the keys came from the environment: neither data dir generated its own
    for env in (env_a, env_b):
        data = Path(env["MAILROOM_DATA_DIR"])
        assert not (data / "secret_key").exists() and not (data / "fernet.key").exists()


@NEEDS_POSTGRES
def test_a_node_without_a_key_variable_does_not_start(tmp_path, node_database):
    procs = {
        "check-keys": start(node_env(tmp_path, "c", node_database, MAILROOM_FERNET_KEYS=None),
                            "check-keys"),
        "worker": start(node_env(tmp_path, "w", node_database, MAILROOM_SECRET_KEY=None),
                        "worker", "--max-seconds", "30"),
        "gateway": start(node_env(tmp_path, "g", node_database, MAILROOM_SECRET_KEY=None,
                                  MAILROOM_FERNET_KEYS=None),
                         "gateway", "--smtp", "127.0.0.1:0", "--lmtp", ""),
        "web": start(node_env(tmp_path, "web", node_database, MAILROOM_SECRET_KEY=None),
                     "web", "--port", str(free_port())),
        # a WSGI server of one's own (gunicorn …) loading the module
        "wsgi": subprocess.Popen([sys.executable, "-c", "import mailroom.wsgi"], cwd=REPO,
                                 env=node_env(tmp_path, "wsgi", node_database,
                                              MAILROOM_FERNET_KEYS=None),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    results = {name: finish(proc) for name, proc in procs.items()}
    for name, (code, output) in results.items():
        assert code == 1, f"{name} started: {output}"
        assert "Refusing to start" in output, output
    assert "MAILROOM_FERNET_KEYS is not set" in results["check-keys"][1]
    assert "MAILROOM_SECRET_KEY is not set" in results["worker"][1]
    assert "MAILROOM_SECRET_KEY and MAILROOM_FERNET_KEYS are not set" in results["gateway"][1]
    assert "MAILROOM_SECRET_KEY is not set" in results["web"][1]
    assert "ImproperlyConfigured: Refusing to start" in results["wsgi"][1]
    assert "MAILROOM_FERNET_KEYS is not set" in results["wsgi"][1]


@NEEDS_POSTGRES
def test_other_keys_are_refused_and_a_rotation_is_accepted(tmp_path, node_database):
    other_fernet = start(node_env(tmp_path, "b", node_database, MAILROOM_FERNET_KEYS=K2),
                         "check-keys")
    other_secret = start(node_env(tmp_path, "c", node_database, MAILROOM_SECRET_KEY="x" * 60),
                         "check-keys")
    code, output = finish(other_fernet)
    assert code == 1 and "None of the keys in MAILROOM_FERNET_KEYS" in output, output
    code, output = finish(other_secret)
    assert code == 1 and "MAILROOM_SECRET_KEY differs" in output, output

    # rotation: the new key first, the old one second: accepted, with a warning
    rotated = run(node_env(tmp_path, "d", node_database, MAILROOM_FERNET_KEYS=f"{K2},{K1}"),
                  "check-keys")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "primary Fernet key" in rotated.stderr
    # a worker left on the old key alone still starts (it shares a key), and says so
    behind = run(node_env(tmp_path, "e", node_database), "worker", "--steps", "cron",
                 "--max-seconds", "0.5")
    assert behind.returncode == 0, behind.stdout + behind.stderr
    assert "primary Fernet key" in behind.stderr


SQLITE_NODE = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("check-keys")
call_command("worker", steps="cron", max_seconds=0.3)
"""


def test_on_sqlite_a_node_without_key_variables_starts_as_today(tmp_path):
    env = node_env(tmp_path, "single", premigrated.sqlite_url(tmp_path / "single.sqlite3"),
                   MAILROOM_SECRET_KEY=None, MAILROOM_FERNET_KEYS=None)
    done = run(env, "shell", "--no-imports", "-c", SQLITE_NODE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "one machine" in done.stdout
    data = Path(env["MAILROOM_DATA_DIR"])
    assert (data / "secret_key").exists() and (data / "fernet.key").exists()
