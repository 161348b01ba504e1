#!/usr/bin/env bash
# Install tw-gates into a venv under $RUNNER_TEMP, once per job.
#
# Every gate action calls this first. The first call in a job builds the venv
# (the runner's own python3, >= 3.10; hash-locked dependencies); every later
# call finds the stamp, which names the version, the lock file's hash, the
# interpreter and the source folder, and returns at once.
#
# Environment: TW_PYTHON (default python3), RUNNER_TEMP (default /tmp),
# TW_GATES_VENV (default $RUNNER_TEMP/tw-gates-venv), PIP_* as pip knows them.
# Prints the venv's bin folder as step output `bin` and adds it to PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
python="${TW_PYTHON:-python3}"
venv="${TW_GATES_VENV:-${RUNNER_TEMP:-/tmp}/tw-gates-venv}"
lock="$root/requirements/runtime.txt"

# The first call put $venv/bin on the job's PATH, so a bare "python3" would
# now name the venv's own interpreter: the stamp would differ, the venv would
# be deleted, and its interpreter with it. Resolve the runner's python without it.
search=":$PATH:"
while [[ "$search" == *":$venv/bin:"* ]]; do search="${search//":$venv/bin:"/:}"; done
search="${search#:}"
PATH="${search%:}"

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/scripts/tw_gates/__init__.py")"
read -r lock_hash _ < <(sha256sum "$lock")
stamp="tw-gates $version lock=${lock_hash:0:16} python=$(command -v "$python" || echo "$python") src=$root"

publish() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "bin=$venv/bin" >>"$GITHUB_OUTPUT"; fi
  if [[ -n "${GITHUB_PATH:-}" ]]; then echo "$venv/bin" >>"$GITHUB_PATH"; fi
}

if [[ -f "$venv/.tw-gates-stamp" && "$(<"$venv/.tw-gates-stamp")" == "$stamp" ]]; then
  echo "tw-gates $version already installed in $venv"
  publish
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "::error title=tw-gates setup::$python not found; tw-gates needs the runner's python3 (3.10 or newer)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; raise SystemExit(sys.version_info < (3, 10))'; then
  echo "::error title=tw-gates setup::$("$python" -V 2>&1) is too old; tw-gates needs Python 3.10 or newer" >&2
  exit 1
fi

started=$SECONDS
rm -rf "$venv"
# A venv without pip is created in milliseconds; the runner's pip installs
# into it with --python (pip >= 22.3). Older pip: a venv with its own pip.
pip_version="$("$python" -m pip --version 2>/dev/null | awk '{print $2}' || true)"
if [[ -n "$pip_version" ]] && "$python" - "$pip_version" <<'PY'
import sys
major, minor = (int(x) for x in sys.argv[1].split(".")[:2])
raise SystemExit((major, minor) < (22, 3))
PY
then
  "$python" -m venv --without-pip "$venv"
  pip=("$python" -m pip --python "$venv/bin/python")
else
  "$python" -m venv "$venv"
  pip=("$venv/bin/python" -m pip)
fi
"${pip[@]}" install --quiet --disable-pip-version-check --no-input --no-deps --require-hashes -r "$lock"

# tw-gates itself runs from the action's checkout: a .pth line puts its
# scripts/ folder on the venv's path, so nothing is built at run time.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$root/scripts" >"$site/tw_gates_src.pth"
cat >"$venv/bin/tw-gates" <<SH
#!/bin/sh
exec "$venv/bin/python" -m tw_gates "\$@"
SH
chmod +x "$venv/bin/tw-gates"
"$venv/bin/tw-gates" --version >/dev/null
echo "$stamp" >"$venv/.tw-gates-stamp"
echo "tw-gates $version installed in $venv ($((SECONDS - started))s)"
publish
