# Shared set-up for scripts/run and scripts/test: Python 3.12, uv, and the locked virtualenv.
# Sourced, not executed. Idempotent: a second run only checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV_VERSION="0.13.8"

as_root() {
  if [ "$(id -u)" = "0" ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "mailroom: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {  # apt_install PKG... — installs only what is missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "mailroom: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
}

find_python() {
  local candidate
  for candidate in python3.12 "$HOME/.pyenv/versions/"3.12*/bin/python3.12 \
                   /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      # the interpreter itself, not a pyenv shim: uv records the path it was given, and a shim
      # path that differs from the venv's own makes every `uv sync` rebuild .venv (~20 s)
      "$candidate" -c 'import os, sys; print(os.path.realpath(sys.executable))'; return 0
    fi
  done
  return 1
}

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
  apt_install python3.12 python3.12-venv 2>/dev/null || true
  PYTHON="$(find_python || true)"
fi
if [ -z "$PYTHON" ]; then
  echo "mailroom: Python 3.12 is required (Django 6 needs it); install python3.12 or pyenv 3.12" >&2
  exit 1
fi

# WeasyPrint (document PDFs) needs Pango and a font
apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
# libarchive reads the names inside 7z, RAR, cab and tar attachments (lib/archive_members.py);
# Debian 13 renamed the package for its 64-bit time_t transition
apt_install libarchive13 2>/dev/null || apt_install libarchive13t64

if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "mailroom: installing uv $UV_VERSION into .tools/"
  "$PYTHON" -m venv .tools
  .tools/bin/python -m pip install -q "uv==$UV_VERSION"
fi
export UV_PYTHON="$PYTHON" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy
# bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (containers, CI) every
# process would otherwise compile Django, WeasyPrint and Mailroom from source at each start
# (4.7 s to a `mailroom` prompt instead of 2.1 s; the test suite starts hundreds of processes)
.tools/bin/uv sync --frozen --quiet --compile-bytecode ${MAILROOM_SYNC_ARGS:-}
.venv/bin/python -m compileall -q -j 0 src >/dev/null
export PATH="$ROOT/.venv/bin:$PATH"
