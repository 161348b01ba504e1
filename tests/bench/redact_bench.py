"""Benchmark of the redactor on what it meets most (reported, not a timed test).

Builds an audit report of N unregistered hits (default 100,000) serialised as
the audit writes it (one JSON text, indent 2, ~20 MB), with a few registered
secrets, then measures:

* ``redact(text)`` over the whole report (what ``atomic_write_text`` does for
  the audit report): MB/s;
* ``redact_obj`` over the report as objects, field by field (what
  ``atomic_write_json`` does): strings/s;
* ``redact(text, heuristics=True)`` over 10,000 short snippets (evidence
  blocks, issue cells): snippets/s;
and checks that the secrets planted in the report are gone.

Run:  python tests/bench/redact_bench.py [--hits 100000] [--repeat 3]
Numbers depend on the machine's load: print ``uptime`` beside them."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from tw_gates.core.redact import Redactor

PATTERNS = ("jinja2-from-string", "dom-inner-html", "template-safe-filter", "vue-v-html", "django-mark-safe")
PLANTED = ("ghp_" + "A1b2C3d4" * 5, "AKIA" + "Q" * 16, "hunter2!", "postgres://svc:pa55word@db.internal/app")


def make_report(hits: int) -> dict:
    rows = [
        {
            "repo": f"bench-org/consumer-{h % 5000:05d}",
            "path": f"src/module_{h % 17}/view_{h}.py",
            "line": 10 + h % 900,
            "pattern": PATTERNS[h % len(PATTERNS)],
            "severity": ("critical", "high", "medium", "low")[h % 4],
        }
        for h in range(hits)
    ]
    for index, secret in enumerate(PLANTED):
        rows[(index + 1) * hits // (len(PLANTED) + 1)]["path"] = f"src/leak_{index}.py?{secret}"
    return {
        "audit_id": "local-bench",
        "generated_at": "2026-01-01T00:00:00Z",
        "exit_code": 2,
        "checks": {"unregistered_hits": {"status": "fail", "detail": f"{hits} hits"}},
        "unregistered_hits": rows,
    }


def snippets(count: int) -> list[str]:
    base = [
        "def render(request):\n    return mark_safe(request.GET['q'])  # nosec",
        'DB_PASSWORD = "correct-horse-battery"\nSECRET_KEY = "django-insecure-abcdefghijklmnop"',
        "const html = el.innerHTML = userInput; // see https://example.com/docs",
        "for i in range(10):\n    total += values[i] * weights[i]",
    ]
    return [base[i % len(base)] + f"\n# {i}" for i in range(count)]


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    redactor = Redactor()
    redactor.register("hunter2!", "registered-value-0123")
    report = make_report(args.hits)
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    strings = sum(len(row) for row in report["unregistered_hits"])
    snips = snippets(10_000)

    print(f"load: {os.getloadavg()[0]:.2f} (1-min average) on {os.cpu_count()} cores")
    print(f"report: {args.hits} hits, {len(text) / 1e6:.1f} MB of JSON")
    seconds = timed(lambda: redactor.redact(text), args.repeat)
    redacted = redactor.redact(text)
    leaked = [s for s in PLANTED if s in redacted]
    print(f"redact(report text):        {seconds:7.3f} s  ({len(text) / 1e6 / seconds:6.1f} MB/s)")
    seconds = timed(lambda: redactor.redact_obj(report), args.repeat)
    print(f"redact_obj(report):         {seconds:7.3f} s  ({strings / seconds / 1e3:6.0f} k strings/s)")
    seconds = timed(lambda: [redactor.redact(s, heuristics=True) for s in snips], args.repeat)
    print(f"redact(snippet, heuristics): {seconds:6.3f} s  ({len(snips) / seconds / 1e3:6.1f} k snippets/s)")
    print("planted secrets left in the redacted report:", leaked or "none")


if __name__ == "__main__":
    main()
