"""Looking inside zip attachments by name only: scripts, executables and macro documents in an
archive flag it; documents that are zips (docx, xlsx) are not archives; nothing is unpacked
and a directory too long to check is flagged, quickly."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from mailroom.lib import archives
from mailroom.lib.dangerous import danger
from mailroom.lib.inbound import parse_body
from tests.incoming.conftest import email_fixture


def _zip(*names: str, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name in names:
            z.writestr(name, b"x" * 10)
    return buf.getvalue()


def test_member_names_read_the_directory():
    data = _zip("a/readme.txt", "a/Rechnung.pdf.js", "Ünïcode.txt")
    assert archives.member_names(data) == ["a/readme.txt", "a/Rechnung.pdf.js", "Ünïcode.txt"]
    assert archives.member_names(b"PK\x03\x04 truncated") == []
    assert archives.member_names(b"") == []


@pytest.mark.parametrize(("names", "flagged"), [
    (("invoice.js",), "holds invoice.js"),
    (("docs/Invoice.pdf.exe",), "holds Invoice.pdf.exe"),
    (("report.docm",), "holds report.docm"),
    (("setup.vbs ",), "holds setup.vbs"),  # Windows ignores the trailing space
    (("report.pdf", "photo.jpg"), ""),
    (("nested.zip",), ""),  # names only: a nested archive is not opened
])
def test_a_zip_is_dangerous_by_the_names_it_holds(names, flagged):
    why = danger("files.zip", "application/zip", _zip(*names))
    assert (flagged in why) if flagged else why == ""


def test_a_zip_under_another_name_is_still_looked_into_but_documents_are_not():
    script = _zip("run.js")
    assert "holds run.js" in danger("scan.pdf", "application/pdf", script)
    assert "holds run.js" in danger("", "application/octet-stream", script)
    assert danger("offer.docx", "application/vnd.openxmlformats-officedocument."
                  "wordprocessingml.document", _zip("word/document.xml", "x/printer.bin")) == ""


def test_too_many_members_are_not_listed_but_flagged_quickly():
    data = _zip(*(f"f{i}.txt" for i in range(archives.MAX_MEMBERS + 1)),
                compression=zipfile.ZIP_STORED)
    start = time.perf_counter()
    with pytest.raises(archives.TooManyMembers):
        archives.member_names(data)
    assert "too many to check" in danger("big.zip", "application/zip", data)
    assert time.perf_counter() - start < 1


def test_a_member_with_zip64_fields_is_read():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        with z.open("huge/tool.ps1", "w", force_zip64=True) as member:
            member.write(b"x")
    assert "holds tool.ps1" in danger("a.zip", "application/zip", buf.getvalue())


def test_the_fixture_zip_with_a_script_is_flagged():
    body = parse_body(email_fixture("zip_with_script.eml"))
    (part,) = body.attachments
    assert part.filename == "Invoice_2026-4411.zip" and part.dangerous
    assert "Invoice_2026-4411.pdf.js" in part.danger
