"""Self-audit speed, A/B in one run: tw-gates self-audit against ripgrep
(the same words as the literal prefilter) and bandit (its default tests) on
one large real tree, each in its own process, alternated for ``--rounds``.
Also the prefilter alone, in memory, on the files where it finds nothing.

    .venv/bin/python tests/bench/self_audit_bench.py [--tree DIR] [--rounds 2] [--bandit PATH] [--semgrep PATH]

The tree is Django's sdist, unpacked once, named by --tree or TW_BENCH_TREE
(default: .bench/django-src in the checkout):
    pip download --no-deps --no-binary :all: django && tar -xzf Django-*.tar.gz
Prints wall and CPU time, MB/s over the bytes of the files each tool reads,
peak RSS of each process and the ratios; the machine's load is printed with
them (numbers taken under load are noisy)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tw_gates.self_audit.files import list_source_files
from tw_gates.self_audit.kinds import KIND_BY_SUFFIX, kind_of
from tw_gates.self_audit.prefilter import KINDS, has_candidate

DEFAULT_TREE = Path(os.environ.get("TW_BENCH_TREE") or Path(__file__).resolve().parents[2] / ".bench" / "django-src")
IDENTITY = ("--repo", "bench/tree", "--commit", "0" * 40, "--branch", "main")


def run_measured(argv: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit code) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode


def tree_bytes(tree: Path) -> tuple[int, int, int]:
    """(bytes of the files the self-audit reads, of the .py files, count of files)."""
    total = python = count = 0
    files, _ = list_source_files(tree)
    for rel in files:
        if kind_of(rel) is None:
            continue
        try:
            size = os.lstat(tree / rel).st_size
        except OSError:
            continue
        count += 1
        total += size
        python += size if rel.endswith(".py") else 0
    return total, python, count


def prefilter_rate(tree: Path) -> tuple[float, int, int]:
    """MB/s of the prefilter alone over the files where it finds no
    candidate (read into memory first), and (files, candidates)."""
    empty: list[tuple[str, bytes]] = []
    candidates = total = 0
    files, _ = list_source_files(tree)
    for rel in files:
        kind = kind_of(rel)
        path = tree / rel
        if kind is None or path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        total += 1
        if has_candidate(kind, data):
            candidates += 1
        else:
            empty.append((kind, data))
    size = sum(len(d) for _, d in empty)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for kind, data in empty:
            has_candidate(kind, data)
        best = min(best, time.perf_counter() - started)
    return size / best / 1e6, total, candidates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--bandit", default=shutil.which("bandit"))
    parser.add_argument("--semgrep", default=None, help="semgrep binary (needs its rules: --semgrep-config)")
    parser.add_argument("--semgrep-config", default="p/xss")
    args = parser.parse_args()
    tree = args.tree.resolve()
    if not tree.is_dir():
        print(f"no tree at {tree}: see the docstring for how to unpack Django's sdist there", file=sys.stderr)
        return 1
    load = os.getloadavg()
    total, python, count = tree_bytes(tree)
    print(f"tree: {tree} ({count} files the self-audit reads, {total / 1e6:.1f} MB; .py {python / 1e6:.1f} MB)")
    print(f"machine: {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
    rate, files, candidates = prefilter_rate(tree)
    print(
        f"prefilter (RE2, in memory, files with no candidate): {rate:,.0f} MB/s; {candidates} of {files} files parsed"
    )

    out = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    tw_gates = str(Path(sys.executable).with_name("tw-gates"))
    words = "|".join(sorted(set(KINDS.values())))
    globs = [part for suffix in KIND_BY_SUFFIX for part in ("-g", f"*{suffix}")]
    tools: dict[str, tuple[list[str], int]] = {
        "tw-gates self-audit": (
            [tw_gates, "self-audit", "--repo-dir", str(tree), "--out", str(out / "a.json"), *IDENTITY],
            total,
        ),
        # The same files (by suffix) and the same words; ASCII \b and \w as in RE2 (ripgrep's
        # Unicode word boundaries make this alternation about 100x slower).
        "ripgrep (same words)": (
            ["rg", "-c", "--no-ignore", "--hidden", "--no-unicode", *globs, "-e", words, str(tree)],
            total,
        ),
    }
    if not shutil.which("rg"):
        del tools["ripgrep (same words)"]
        print("ripgrep: not installed (apt-get install ripgrep), not compared")
    if args.bandit:
        tools["bandit (default tests)"] = (
            [args.bandit, "-r", str(tree), "-q", "-f", "json", "-o", "/dev/null"],
            python,
        )
    else:
        print("bandit: not installed (pip install bandit), not compared")
    if args.semgrep:
        tools["semgrep"] = (
            [args.semgrep, "--config", args.semgrep_config, "--quiet", "--metrics=off", str(tree)],
            total,
        )

    runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in tools}
    for _ in range(args.rounds):
        for name, (argv, _) in tools.items():
            runs[name].append(run_measured(argv))
    shutil.rmtree(out, ignore_errors=True)

    print(f"\n{'tool':<24} {'wall s':>8} {'CPU s':>8} {'MB/s':>8} {'MB/CPU-s':>9} {'peak RSS MiB':>13} {'exit':>5}")
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for name, results in runs.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        rss = max(r[2] for r in results)
        walls[name] = wall
        size = tools[name][1]
        cpus[name] = cpu
        print(
            f"{name:<24} {wall:>8.2f} {cpu:>8.2f} {size / wall / 1e6:>8.2f} {size / max(cpu, 1e-9) / 1e6:>9.2f} "
            f"{rss:>13.0f} {results[-1][3]:>5}"
        )
    ours = walls["tw-gates self-audit"]
    for name, wall in walls.items():
        if name != "tw-gates self-audit":
            cpu_ratio = cpus[name] / max(cpus["tw-gates self-audit"], 1e-9)
            print(f"ratio {name} / tw-gates: {wall / ours:.1f}x wall, {cpu_ratio:.1f}x CPU")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
