#!/usr/bin/env bash
# Install what azvhdaudit's test suite needs on Debian or Ubuntu, only what is missing, then run the suite.
#
#   scripts/test.sh                  # everything, then pytest
#   scripts/test.sh -m "not slow"    # arguments go to pytest
#   scripts/test.sh --setup-only     # the system packages and Azurite, no Python, no tests
#
# 1. Debian packages the tests build their disks with (qemu-img, ntfs-3g, hivex, mtools, mingw-w64 ...) and
#    chromium (renders the HTML report): `apt-get update` and `apt-get install` of the missing ones only,
#    through sudo unless run as root. Node.js for Azurite: one already installed is kept (Debian's npm
#    conflicts with a NodeSource nodejs); otherwise Debian's nodejs and npm.
# 2. Azurite, the Azure Storage emulator the remote tests start, into .ci-node/ (skipped when there).
# 3. The package with its test extras, into the active virtualenv, else into .venv/ (made if missing).
#    PYTHON overrides the interpreter; AZVHDAUDIT_INSTALL what is installed (default: this tree, editable;
#    a wheel's path installs that wheel; "none" installs nothing).
# 4. pytest, with the arguments given. Exit status: pytest's; a run that collects no tests fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

setup_only=0
if [ "${1:-}" = "--setup-only" ]; then
  setup_only=1
  shift
fi

say() { printf '== %s\n' "$*" >&2; }

# --- 1. system packages ------------------------------------------------------------------------------
packages=(
  qemu-utils ntfs-3g libhivex-bin libwin-hivex-perl python3-hivex faketime fdisk gdisk dosfstools mtools
  xz-utils gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 gcc-mingw-w64-i686 binutils-mingw-w64-i686 chromium
  openssl osslsigncode  # sign the test and sample drivers (Debian's shim-signed is fetched with apt-get download)
)
if [ "$setup_only" -eq 0 ] && [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x .venv/bin/python ]; then
  packages+=(python3 python3-venv)  # to make .venv
fi
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  missing=()
  for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
  done
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      as_root=()
    elif command -v sudo >/dev/null; then
      as_root=(sudo)
    else
      echo "scripts/test.sh: these packages are missing and there is no sudo to install them: ${missing[*]}" >&2
      exit 1
    fi
    say "apt-get install ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "system packages: all ${#packages[@]} installed"
  fi
else
  say "no apt-get: install these yourself: ${packages[*]} and Node.js with npm"
fi

# --- 2. Azurite -------------------------------------------------------------------------------------
if [ -x .ci-node/node_modules/.bin/azurite-blob ]; then
  say "Azurite: already in .ci-node"
else
  say "npm install azurite@3 into .ci-node"
  npm install --prefix "$root/.ci-node" --no-save --no-audit --no-fund azurite@3 >/dev/null
fi
[ "$setup_only" -eq 1 ] && exit 0

# --- 3. Python --------------------------------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then
  python=$VIRTUAL_ENV/bin/python
else
  [ -x .venv/bin/python ] || { say "python3 -m venv .venv"; python3 -m venv .venv; }
  python=$root/.venv/bin/python
fi
install=${AZVHDAUDIT_INSTALL:-.}
if [ "$install" = . ]; then
  say "pip install -e .[test] with $python"
  "$python" -m pip install -q --disable-pip-version-check -e ".[test]"
elif [ "$install" != none ]; then
  say "pip install ${install}[test] with $python"
  "$python" -m pip install -q --disable-pip-version-check "${install}[test]"
fi

# --- 4. the tests -----------------------------------------------------------------------------------
say "pytest $*"
set +e
"$python" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a broken suite, not a pass" >&2
  exit 1
fi
exit "$rc"
