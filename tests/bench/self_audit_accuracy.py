"""Recall and precision of the consumer self-audit on the labeled benchmark
(tests/bench/self_audit_labeled), overall and per category, for tw-gates
and, when installed, bandit (Python files only: B308, B701-B704) and semgrep.

    .venv/bin/python tests/bench/self_audit_accuracy.py [--bandit PATH] [--semgrep PATH] [--semgrep-config p/xss]

A labeled line counts as found when the tool reports a hit on it; a hit on a
negative line is a false positive, and so is a hit on a line with no label
(counted apart as "unlabeled"). Prints one table; exits 0."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from tw_gates.self_audit.catalog import load_pattern_catalog
from tw_gates.self_audit.kinds import kind_of
from tw_gates.self_audit.scanner import scan

HERE = Path(__file__).resolve().parent
LABELED = HERE / "self_audit_labeled"
MARKER = re.compile(r"tw:(pos|neg)\s+([\w-]+)")
BANDIT_TESTS = "B308,B701,B702,B703,B704"

Labels = dict[tuple[str, int], tuple[bool, str]]  # (path, line) -> (positive, category)


def read_labels(root: Path) -> Labels:
    labels: Labels = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or kind_of(path.name) is None:
            continue
        pending: tuple[bool, str] | None = None
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            marker = MARKER.search(line)
            if marker:
                pending = (marker.group(1) == "pos", marker.group(2))
            elif pending is not None:
                labels[(rel, number)] = pending
                pending = None
    return labels


def tw_gates_hits(root: Path) -> set[tuple[str, int]]:
    result = scan(root, load_pattern_catalog())
    return {(h.path, h.line) for h in result.hits}


def bandit_hits(bandit: str, root: Path) -> set[tuple[str, int]] | None:
    files = [str(p) for p in sorted(root.rglob("*.py"))]
    proc = subprocess.run(
        [bandit, "-q", "-f", "json", "-t", BANDIT_TESTS, *files], capture_output=True, text=True, timeout=600
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print(f"bandit: no JSON report (exit {proc.returncode}): {proc.stderr.strip()[:200]}")
        return None
    return {(Path(r["filename"]).resolve().relative_to(root).as_posix(), r["line_number"]) for r in report["results"]}


def semgrep_hits(semgrep: str, config: str, root: Path) -> set[tuple[str, int]] | None:
    try:
        proc = subprocess.run(
            [semgrep, "--config", config, "--json", "--quiet", "--metrics=off", str(root)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        report = json.loads(proc.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as exc:
        print(
            f"semgrep: could not run --config {config} ({type(exc).__name__}); its rules are fetched from its registry"
        )
        return None
    if report.get("errors") and not report.get("results"):
        print(f"semgrep: --config {config} failed: {str(report['errors'][0])[:200]}")
        return None
    return {(Path(r["path"]).resolve().relative_to(root).as_posix(), r["start"]["line"]) for r in report["results"]}


def score(labels: Labels, hits: set[tuple[str, int]], only=None) -> dict[str, dict[str, int]]:
    """Counts per category: tp, fn, fp, tn (and 'unlabeled' hits overall)."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, (positive, category) in labels.items():
        if only and not only(key[0]):
            continue
        found = key in hits
        cell = ("tp" if found else "fn") if positive else ("fp" if found else "tn")
        table[category][cell] += 1
        table["ALL"][cell] += 1
    table["ALL"]["unlabeled"] = sum(1 for h in hits if h not in labels and (not only or only(h[0])))
    return table


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "  - "


def print_table(name: str, table: dict[str, dict[str, int]]) -> None:
    print(f"\n{name}")
    print(f"  {'category':<12} {'pos':>4} {'neg':>4} {'TP':>4} {'FN':>4} {'FP':>4} {'recall':>7} {'precision':>9}")
    for category in sorted(table, key=lambda c: (c == "ALL", c)):
        row = table[category]
        tp, fn, fp, tn = row["tp"], row["fn"], row["fp"], row["tn"]
        fp_all = fp + row.get("unlabeled", 0)
        print(
            f"  {category:<12} {tp + fn:>4} {fp + tn:>4} {tp:>4} {fn:>4} {fp_all:>4} "
            f"{ratio(tp, tp + fn):>7} {ratio(tp, tp + fp_all):>9}"
        )
    if table["ALL"].get("unlabeled"):
        print(f"  (FP of ALL includes {table['ALL']['unlabeled']} hit(s) on unlabeled lines)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=LABELED)
    parser.add_argument("--bandit", default=shutil.which("bandit"))
    parser.add_argument("--semgrep", default=shutil.which("semgrep"))
    parser.add_argument("--semgrep-config", default="p/xss")
    parser.add_argument("--misses", action="store_true", help="list every missed and false-positive line")
    args = parser.parse_args()
    root = args.root.resolve()
    labels = read_labels(root)
    positives = sum(1 for p, _ in labels.values() if p)
    print(f"labeled set: {root} ({positives} positive, {len(labels) - positives} negative lines)")

    started = time.perf_counter()
    hits = tw_gates_hits(root)
    print(f"tw-gates: {len(hits)} hit lines in {time.perf_counter() - started:.2f}s")
    print_table("tw-gates self-audit (all files)", score(labels, hits))
    is_python = lambda path: path.endswith(".py")  # noqa: E731
    print_table("tw-gates self-audit (Python files)", score(labels, hits, is_python))
    if args.misses:
        for key, (positive, category) in sorted(labels.items()):
            if positive != (key in hits):
                print(f"  {'MISS' if positive else 'FP  '} {category:<10} {key[0]}:{key[1]}")
        for key in sorted(h for h in hits if h not in labels):
            print(f"  FP   unlabeled  {key[0]}:{key[1]}")

    if args.bandit:
        found = bandit_hits(args.bandit, root)
        if found is not None:
            print_table(f"bandit {BANDIT_TESTS} (Python files)", score(labels, found, is_python))
    else:
        print("\nbandit: not installed (pip install bandit), not compared")
    if args.semgrep:
        found = semgrep_hits(args.semgrep, args.semgrep_config, root)
        if found is not None:
            print_table(f"semgrep --config {args.semgrep_config}", score(labels, found))
    else:
        print("semgrep: not installed, not compared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
