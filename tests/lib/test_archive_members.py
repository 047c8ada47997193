"""Looking inside archives other than zip (7z, RAR, tar and its compressed forms, a lone gzip
file) and one level into an archive inside an archive: by names only, bounded in names, in
bytes walked and in bytes read, and an archive whose names are encrypted is flagged."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
import zipfile

import libarchive
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.lib import archive_members, archives
from mailroom.lib.dangerous import danger
from mailroom.lib.inbound import parse_body
from tests.incoming.conftest import email_fixture
from tests.lib.rar5 import rar5


def _tar(*files: tuple[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(*files: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()


def _seven_zip(*files: tuple[str, bytes]) -> bytes:
    buf = bytearray()

    def write(block: bytes) -> int:
        buf.extend(block)
        return len(block)

    with libarchive.custom_writer(write, "7zip") as archive:
        for name, data in files:
            archive.add_file_from_memory(name, len(data), data)
    return bytes(buf)


@pytest.mark.parametrize(("kind", "build"), [
    ("tar", lambda *f: _tar(*f)),
    ("gzip", lambda *f: _tar(*f, mode="w:gz")),
    ("bzip2", lambda *f: _tar(*f, mode="w:bz2")),
    ("xz", lambda *f: _tar(*f, mode="w:xz")),
    ("RAR", lambda *f: rar5(list(f))),
    ("7z", lambda *f: _seven_zip(*f)),
])
def test_each_format_is_read_by_its_names(kind, build):
    data = build(("docs/readme.txt", b"hello"), ("docs/Rechnung.pdf.vbs", b"x"))
    assert archive_members.kind(data) == kind
    assert [m.name for m in archive_members.members(data)] == [
        "docs/readme.txt", "docs/Rechnung.pdf.vbs"]
    assert danger("files.dat", "application/octet-stream", data) == (
        "the archive files.dat holds Rechnung.pdf.vbs")
    assert danger("files.dat", "", build(("docs/readme.txt", b"hello"))) == ""


def test_a_lone_compressed_file_is_judged_by_the_name_it_unpacks_to():
    assert danger("invoice.exe.gz", "application/gzip", gzip.compress(b"MZ")) == (
        "the archive invoice.exe.gz unpacks to invoice.exe")
    assert danger("invoice.pdf.bz2", "", bz2.compress(b"%PDF")) == ""
    assert danger("run.ps1.xz", "", lzma.compress(b"x")) == (
        "the archive run.ps1.xz unpacks to run.ps1")
    named = io.BytesIO()  # the name gzip keeps in its own header (gzip -N)
    with gzip.GzipFile("setup.js", "wb", fileobj=named) as handle:
        handle.write(b"x")
    assert danger("data.gz", "", named.getvalue()) == "the archive data.gz unpacks to setup.js"


def test_an_archive_inside_an_archive_is_looked_into_once():
    script = _zip(("pay.js", b"x"))
    assert danger("outer.zip", "application/zip", _zip(("inner.zip", script))) == (
        "the archive outer.zip holds inner.zip, which holds pay.js")
    assert danger("outer.tgz", "", _tar(("a/inner.7z", _seven_zip(("b.exe", b"MZ"))),
                                        mode="w:gz")) == (
        "the archive outer.tgz holds inner.7z, which holds b.exe")
    # two levels down is not opened: the bound on work holds for every depth
    assert danger("outer.zip", "", _zip(("middle.zip", _zip(("inner.zip", script))))) == ""


def test_an_archive_inside_a_password_protected_zip_is_flagged_as_unchecked():
    """The zip's names can be read (only its contents are encrypted), its inner archive's
    cannot: the flag says which."""
    buf = bytearray()

    def write(block: bytes) -> int:
        buf.extend(block)
        return len(block)

    with libarchive.custom_writer(write, "zip", options="encryption=zipcrypt",
                                  passphrase="1234") as archive:
        archive.add_file_from_memory("docs/inner.zip", 3, b"abc")
    assert danger("Invoice.zip", "application/zip", bytes(buf)) == (
        "the archive Invoice.zip holds inner.zip, an archive whose contents are "
        "password-protected, so it cannot be checked")


def test_an_inner_archive_over_the_read_limit_is_not_read(monkeypatch):
    monkeypatch.setattr(archive_members, "MEMBER_BYTES", 100)
    padded = _tar(("pay.js", b"x"), ("pad.txt", b"p" * 200))  # stored: over 100 bytes
    assert danger("outer.zip", "", _zip(("inner.tar", padded))) == ""


def test_names_are_bounded_in_number_and_bytes_walked_quickly():
    many = _tar(*((f"f{i}.txt", b"") for i in range(archives.MAX_MEMBERS + 1)), mode="w:gz")
    started = time.perf_counter()
    assert danger("many.tgz", "", many) == (
        f"the archive many.tgz lists more than {archives.MAX_MEMBERS:,} files, too many to check")
    # 70 MB of zeros compress to 70 KB: declared sizes stop the walk before unpacking them
    bomb = _tar(("zeros.bin", bytes(70 * 2**20)), ("late.exe", b"MZ"), mode="w:gz")
    assert len(bomb) < 200_000
    assert danger("bomb.tgz", "", bomb) == (
        "the archive bomb.tgz would unpack to more than 64 MB, too much to check")
    assert time.perf_counter() - started < 2


def test_names_that_are_not_utf8_are_still_checked():
    """A tar written on a Latin-1 system, an old RAR's code page: libarchive gives bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT,
                      encoding="latin-1") as tar:
        info = tarfile.TarInfo("Rechnung_\xe4.exe")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"MZ"))
    assert danger("x.tar", "", buf.getvalue()) == "the archive x.tar holds Rechnung_\ufffd.exe"


def test_an_unreadable_archive_says_so_and_a_document_is_not_an_archive():
    broken = b"Rar!\x1a\x07\x01\x00" + b"\xff" * 40
    assert danger("x.rar", "", broken).startswith("the archive x.rar cannot be read as RAR (")
    assert danger("notes.txt", "text/plain", b"just text") == ""


def test_the_fixture_archives_are_flagged_with_the_reason():
    cases = {
        "rar_with_exe.eml": ("Scan_0042.rar", "holds Scan_0042.pdf.exe"),
        "seven_zip_nested_zip_script.eml": (
            "Remittance_8812.7z", "holds Remittance.zip, which holds Payment_Advice_8812.pdf.js"),
        "seven_zip_encrypted_names.eml": (
            "DHL_Shipment_Label.7z", "is encrypted: the names of its files cannot be read"),
    }
    for fixture, (filename, why) in cases.items():
        (part,) = parse_body(email_fixture(fixture)).attachments
        assert part.filename == filename and part.dangerous, fixture
        assert why in part.danger, (fixture, part.danger)


MAGICS = [b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00",
          b"MSCF\x00\x00\x00\x00", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"]


@settings(max_examples=400, deadline=None)
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=600),
       cut=st.integers(min_value=0, max_value=600),
       name=st.binary(min_size=1, max_size=60).filter(lambda b: b"\x00" not in b))
def test_damaged_archives_never_raise(magic, tail, cut, name):
    """What a stranger sends is parsed for every message: a damaged or hostile archive, with
    any bytes for a name, gives a reason or nothing, never an exception (which would
    quarantine the whole message)."""
    text = name.decode("latin-1")
    real = {b"7z": _seven_zip((text, tail)), b"Ra": rar5([(text, tail)]),
            b"\x1f\x8b": _latin1_tar(name, tail)}.get(magic[:2])
    for data in (magic + tail, real[:cut] if real else magic, real or magic):
        assert isinstance(danger("file.dat", "", data), str)


def _latin1_tar(name: bytes, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tar:
        info = tarfile.TarInfo(name.decode("latin-1"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
