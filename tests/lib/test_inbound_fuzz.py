"""Run the atheris harness (tests/lib/fuzz_inbound.py) for ~20 s: no crash, leak or stall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.lib import mime

HARNESS = Path(__file__).with_name("fuzz_inbound.py")
SECONDS = int(os.environ.get("MAILROOM_FUZZ_SECONDS", "20"))

SEEDS = {
    "multipart": b"""From: "A, B" <a@b.example>
To: group: c@d.example, "x" <y@z.example>;
Subject: =?utf-8?q?Caf=C3=A9?=
Message-ID: <1@x>
References: <0@x> <1@x>
Date: Mon, 1 Jun 2026 10:00:00 +0200
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9
--a
Content-Type: text/html

<p>x</p>
--a--
--m
Content-Type: message/rfc822

Subject: inner

body
--m
Content-Type: application/octet-stream; name*0*=utf-8''a%C3%A9; name*1=.exe
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA
--m--
""",
    "builder": mime.build_message(
        from_addr=("Zoë", "zoe@example.org"), to=["a@example.com"], subject="Hi",
        message_id="<2@x>", text="Hello", html="<p>Hello</p>",
        attachments=[mime.Attachment("l.png", "image/png", b"PNG", content_id="l@x",
                                     inline=True)]),
}


@pytest.mark.slow
def test_atheris_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    result = subprocess.run(
        [sys.executable, str(HARNESS), f"-max_total_time={SECONDS}", "-timeout=5",
         "-rss_limit_mb=1024", "-max_len=8192", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr, result.stderr[-2000:]
