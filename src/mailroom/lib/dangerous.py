"""Which attachments are dangerous, in plain words (no Django): executables, scripts and macro
documents by name or type, and inside archives by the names they list (never unpacked to
disk: lib/archives.py, lib/archive_members.py). Flagged for the UI, never opened."""

from __future__ import annotations

import re

from mailroom.lib import archive_members, archives
from mailroom.lib.inbound_fields import decode_words

DANGEROUS_EXTENSIONS = frozenset("""
    exe com scr pif bat cmd ps1 psm1 psd1 vb vbs vbe js jse mjs wsf wsh wsc hta jar msi msp
    mst lnk iso img vhd vhdx docm dotm xlsm xltm xlam xlsb pptm potm ppam ppsm sldm reg cpl
    scf inf dll sys chm appx appxbundle msix msixbundle application gadget url sh ksh csh
    desktop apk app pkg dmg deb rpm elf bin run action command workflow one svg
""".split())
DANGEROUS_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
    "application/x-executable", "application/x-ms-installer", "application/x-msi",
    "application/javascript", "text/javascript", "application/x-javascript",
    "application/ecmascript", "text/vbscript", "application/x-vbscript", "application/hta",
    "application/java-archive", "application/x-java-archive", "application/x-sh",
    "application/x-shellscript", "application/x-bat", "application/x-ms-shortcut",
    "application/x-iso9660-image", "application/vnd.microsoft.portable-executable",
    "application/vnd.ms-word.document.macroenabled.12",
    "application/vnd.ms-excel.sheet.macroenabled.12",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12",
    "application/x-apple-diskimage", "application/vnd.android.package-archive",
})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def is_dangerous(filename: str, content_type: str) -> bool:
    """Executable, script or macro by extension or type: flagged for the UI, never opened."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    return extension in DANGEROUS_EXTENSIONS or content_type in DANGEROUS_TYPES


ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
# Zip containers that are documents, not archives: their parts are XML and media.
ZIP_DOCUMENTS = frozenset("""
    docx dotx xlsx xltx pptx potx ppsx odt ott ods ots odp otp odg epub vsdx 3mf kmz xps oxps
""".split())


ARCHIVE_SUFFIXES = frozenset("zip 7z rar cab tar tgz tbz2 txz gz bz2 xz".split())


def danger(filename: str, content_type: str, data: bytes) -> str:
    """Why an attachment is dangerous in plain words, '' if it is not.

    Executables, scripts and macro documents by name or type; inside an archive (zip, 7z,
    RAR, cab, tar, gzip/bzip2/xz), the same by the names it lists, and one level further for
    an archive inside it. Never unpacked to disk, always bounded (lib/archives.py for zip's
    directory, lib/archive_members.py for the rest): an archive listing too many names, too
    large to walk, or whose names are encrypted cannot be checked, and is flagged.
    """
    if is_dangerous(filename, content_type):
        return f"{filename or 'the attachment'} is an executable, script or macro document"
    why = _inside(filename, content_type, data, nested=True)
    return f"the archive {filename or ''} {why}".replace("  ", " ") if why else ""


def _inside(filename: str, content_type: str, data: bytes, *, nested: bool) -> str:
    """What makes an archive dangerous ("holds x.js", "is encrypted, …"), '' if nothing."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension == "zip" or content_type in ZIP_TYPES or (
            extension not in ZIP_DOCUMENTS and archives.looks_like_zip(data)):
        try:
            names = archives.member_names(data)
        except archives.TooManyMembers:
            return f"lists more than {archives.MAX_MEMBERS:,} files, too many to check"
        for name in names:
            if flagged := _flagged(name):
                return f"holds {flagged}"
        if not nested or not any(_suffix(n) in ARCHIVE_SUFFIXES for n in names):
            return ""
    elif archive_members.kind(data) in ("", "zip"):  # not an archive, or a document (docx)
        return ""
    try:
        for member in archive_members.members(data, read=ARCHIVE_SUFFIXES if nested else ()):
            base = safe_name(member.name)
            if base and is_dangerous(base, ""):
                return f"holds {base[:100]}"
            if member.sealed:
                return (f"holds {base[:100]}, an archive whose contents are "
                        "password-protected, so it cannot be checked")
            if member.data is not None:
                inner = _inside(base, "", member.data, nested=False)
                if inner:
                    return f"holds {base[:100]}, which {inner}"
    except archives.TooManyMembers:
        return f"lists more than {archives.MAX_MEMBERS:,} files, too many to check"
    except archive_members.TooLarge:
        return (f"would unpack to more than {archive_members.WALK_BYTES // 2**20} MB, too "
                "much to check")
    except archive_members.Unreadable as exc:
        return str(exc)
    for name in archive_members.compressed_name(filename, data):
        if flagged := _flagged(name):
            return f"unpacks to {flagged}"
    return ""


def _suffix(name: str) -> str:
    return name.rpartition(".")[2].lower().rstrip(". ") if "." in name else ""


def _flagged(name: str) -> str:
    """The member's name as shown (at most 100 characters) if it is dangerous, else ''."""
    base = safe_name(name)
    return base[:100] if base and is_dangerous(base, "") else ""


def safe_name(name: str) -> str:
    """A file name with no path, control or bidi characters, trailing dots or spaces."""
    name = _UNSAFE_NAME.sub("", decode_words(name) if "=?" in name else name)
    name = " ".join(name.replace("\\", "/").rpartition("/")[2].split())
    return name.rstrip(". ")[:255]
