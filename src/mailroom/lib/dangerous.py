"""Which attachments are dangerous, in plain words (no Django): executables, scripts and macro
documents by name or type, and inside zip archives by the names in their directory (never
unpacked: lib/archives.py). Flagged for the UI, never opened."""

from __future__ import annotations

import re

from mailroom.lib import archives
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


def danger(filename: str, content_type: str, data: bytes) -> str:
    """Why an attachment is dangerous in plain words, '' if it is not.

    Executables, scripts and macro documents by name or type; inside a zip archive, the same
    by the names in its directory (never unpacked, at most archives.MAX_MEMBERS names; an
    archive listing more cannot be checked and is flagged).
    """
    if is_dangerous(filename, content_type):
        return f"{filename or 'the attachment'} is an executable, script or macro document"
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if not (extension == "zip" or content_type in ZIP_TYPES or (
            extension not in ZIP_DOCUMENTS and archives.looks_like_zip(data))):
        return ""
    try:
        names = archives.member_names(data)
    except archives.TooManyMembers:
        return (f"the archive {filename or ''} lists more than {archives.MAX_MEMBERS:,} "
                f"files, too many to check").replace("  ", " ")
    for name in names:
        base = safe_name(name)
        if base and is_dangerous(base, ""):
            return f"the archive {filename or ''} holds {base[:100]}".replace("  ", " ")
    return ""


def safe_name(name: str) -> str:
    """A file name with no path, control or bidi characters, trailing dots or spaces."""
    name = _UNSAFE_NAME.sub("", decode_words(name) if "=?" in name else name)
    name = " ".join(name.replace("\\", "/").rpartition("/")[2].split())
    return name.rstrip(". ")[:255]
