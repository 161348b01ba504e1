#!/usr/bin/env bash
# Install tw-gates into a venv under $RUNNER_TEMP, once per job.
#
# Every gate action calls this first. The first call in a job builds the venv
# (the runner's own python3, >= 3.10; hash-locked dependencies); every later
# call finds the stamps (lock file hash and interpreter; version and source
# folder) and returns at once.
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
# Two stamps: what was installed (dependencies, interpreter) and where the
# tw-gates code comes from. Only the first costs an install to change.
deps_stamp="lock=${lock_hash:0:16} python=$(command -v "$python" || echo "$python")"
src_stamp="tw-gates $version src=$root"

publish() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "bin=$venv/bin" >>"$GITHUB_OUTPUT"; fi
  if [[ -n "${GITHUB_PATH:-}" ]]; then echo "$venv/bin" >>"$GITHUB_PATH"; fi
}

# tw-gates itself runs from the action's checkout: a .pth line puts its
# scripts/ folder on the venv's path, so nothing is built at run time.
point_at_source() {
  echo "$root/scripts" >"$(<"$venv/.tw-gates-site")/tw_gates_src.pth"
  echo "$src_stamp" >"$venv/.tw-gates-src"
}

if [[ -f "$venv/.tw-gates-deps" && "$(<"$venv/.tw-gates-deps")" == "$deps_stamp" ]]; then
  if [[ -f "$venv/.tw-gates-src" && "$(<"$venv/.tw-gates-src")" == "$src_stamp" ]]; then
    echo "tw-gates $version already installed in $venv"
  else
    # Another checkout of tw-gates in the same job (another ref, or the
    # umbrella beside a gate action): same dependencies, new code path.
    point_at_source
    echo "tw-gates $version already installed in $venv, now running from $root"
  fi
  publish
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "::error title=tw-gates setup::$python not found; tw-gates needs the runner's python3 (3.10 or newer)" >&2
  exit 1
fi
# One interpreter start answers both questions: is it new enough, and can its
# pip install into another environment (--python, pip >= 22.3)?
if ! probe="$("$python" - <<'PY'
import sys
if sys.version_info < (3, 10):
    print("too-old", sys.version.split()[0])
    raise SystemExit(0)
try:
    from importlib.metadata import version
    major, minor = (int(x) for x in version("pip").split(".")[:2])
    print("pip-python" if (major, minor) >= (22, 3) else "venv-pip")
except Exception:
    print("venv-pip")
PY
)"; then
  echo "::error title=tw-gates setup::$python does not run" >&2
  exit 1
fi
if [[ "$probe" == too-old* ]]; then
  echo "::error title=tw-gates setup::Python ${probe#too-old } is too old; tw-gates needs Python 3.10 or newer" >&2
  exit 1
fi

started=$SECONDS
rm -rf "$venv"
# A venv without pip is created in milliseconds and the runner's pip installs
# into it; with an older pip the venv gets its own.
if [[ "$probe" == pip-python ]]; then
  "$python" -m venv --without-pip "$venv"
  pip=("$python" -m pip --python "$venv/bin/python")
else
  "$python" -m venv "$venv"
  pip=("$venv/bin/python" -m pip)
fi
"${pip[@]}" install --quiet --disable-pip-version-check --no-input --no-deps --require-hashes -r "$lock"

"$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$venv/.tw-gates-site"
point_at_source
cat >"$venv/bin/tw-gates" <<SH
#!/bin/sh
exec "$venv/bin/python" -m tw_gates "\$@"
SH
chmod +x "$venv/bin/tw-gates"
"$venv/bin/tw-gates" --version >/dev/null
echo "$deps_stamp" >"$venv/.tw-gates-deps"
echo "tw-gates $version installed in $venv ($((SECONDS - started))s)"
publish
