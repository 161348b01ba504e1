"""Standalone mode: ``python -m tests.emulator --port 0 [--state state.json]``.

Prints ``EMULATOR_URL=http://127.0.0.1:PORT`` as its first line, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .server import GitHubEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--state", help="JSON state file to seed tokens, repos, issues, artifacts, ...")
    parser.add_argument("--html-base", default="https://github.com", help="prefix of html_url fields")
    args = parser.parse_args(argv)

    state = {}
    if args.state:
        with open(args.state, encoding="utf-8") as fh:
            state = json.load(fh)
    emu = GitHubEmulator.from_state(state, host=args.host, port=args.port, html_base=args.html_base)
    emu.start()
    print(f"EMULATOR_URL={emu.url}", flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
