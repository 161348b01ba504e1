"""Evidence append benchmark: N processes each append M evidence blocks to one
evidence_blocks.jsonl through ``EvidenceLog.add`` (the lock, the duplicate
check under the lock, the append, fsync), then the file is checked: every
block present exactly once, no torn or interleaved line. A second part
shows that a writer that cannot get the lock gives up within its timeout.

    python tests/bench/evidence_bench.py [--procs 8] [--blocks 1000] [--no-fsync] [--dir DIR]

Target (issue 7): >= 5,000 appends/s with fsync on the reference machine
(2 cores). Exit 1 if any block is lost, duplicated or torn, or if the
lock timeout does not hold."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_APPENDS_PER_S = 5000


def _writer(root: str, evidence: str, worker: int, blocks: int, fsync: bool, start, results) -> None:
    from tw_gates.phases.evidence import EvidenceLog, make_block

    os.chdir(root)
    # The blocks are built before the clock starts: the benchmark measures appending.
    made = [
        make_block(
            f"W{worker:02d}-{i:05d}", i % 5, "source.py", f"{1 + i % 40}-{5 + i % 40}", f"worker {worker} block {i}"
        )
        for i in range(blocks)
    ]
    log = EvidenceLog(evidence, lock_timeout=30, fsync=fsync)
    start.wait()
    began = time.perf_counter()
    for block in made:
        log.add(block)
    results.put((worker, began, time.perf_counter()))


def _source() -> str:
    lines = [f"def function_{i}(value):  # evidence line {i}\n    return value * {i}\n" for i in range(30)]
    return "".join(lines)


def run_bench(procs: int, blocks: int, fsync: bool, folder: Path) -> dict:
    (folder / "source.py").write_text(_source())
    evidence = folder / "evidence_blocks.jsonl"
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_writer, args=(str(folder), str(evidence), w, blocks, fsync, start, results))
        for w in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(1.0)  # let every worker build its blocks and reach the start line
    start.set()
    timings = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
    began = min(t[1] for t in timings)
    ended = max(t[2] for t in timings)
    elapsed = ended - began

    data = evidence.read_bytes()
    raw_lines = data.split(b"\n")
    torn = 0 if raw_lines[-1] == b"" else 1
    ids, bad = [], 0
    from tw_gates.schemas.evidence import EvidenceBlock

    for raw in raw_lines[:-1]:
        try:
            ids.append(EvidenceBlock.model_validate_json(raw).evidence_id)
        except ValueError:
            bad += 1
    expected = {f"W{w:02d}-{i:05d}" for w in range(procs) for i in range(blocks)}
    return {
        "processes": procs,
        "blocks_per_process": blocks,
        "fsync": fsync,
        "appends": procs * blocks,
        "seconds": round(elapsed, 3),
        "appends_per_s": round(procs * blocks / elapsed),
        "lines": len(raw_lines) - 1,
        "lost": len(expected - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "torn_or_invalid": bad + torn,
        "bytes": len(data),
        "worker_exit_codes": sorted({w.exitcode for w in workers}),
    }


def raw_fsync_rate(folder: Path, count: int = 2000) -> int:
    """What the disk allows one process with no lock and no JSON: append a
    400-byte line and fsync, ``count`` times. The context for the numbers above:
    on a loaded machine both drop together."""
    path = folder / "raw.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = b"x" * 399 + b"\n"
    began = time.perf_counter()
    try:
        for _ in range(count):
            os.write(fd, line)
            os.fsync(fd)
    finally:
        os.close(fd)
    return round(count / (time.perf_counter() - began))


def _hold(path: str, ready, release) -> None:
    import portalocker

    with portalocker.Lock(path, mode="a", flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING):
        ready.set()
        release.wait(60)


def lock_timeout_check(folder: Path, timeout: float = 0.5) -> dict:
    """A writer facing a held lock must fail after ~timeout with a message, not block."""
    from tw_gates.core.fsio import LockTimeout
    from tw_gates.phases.evidence import EvidenceLog, make_block

    evidence = folder / "held.jsonl"
    evidence.touch()
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(evidence), ready, release))
    holder.start()
    ready.wait(10)
    os.chdir(folder)
    block = make_block("HELD-1", 0, "source.py", "1-2", "held")
    began = time.perf_counter()
    try:
        EvidenceLog(evidence, lock_timeout=timeout).add(block)
        outcome, message = "written (lock not honoured)", ""
    except LockTimeout as exc:
        outcome, message = "LockTimeout", str(exc)
    waited = time.perf_counter() - began
    release.set()
    holder.join(10)
    return {"timeout_s": timeout, "waited_s": round(waited, 3), "outcome": outcome, "message": message}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=1000, help="blocks per process")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--dir", help="folder on the filesystem to measure (default: a temp folder)")
    parser.add_argument("--runs", type=int, default=3, help="repeat and report each run and the median")
    args = parser.parse_args()

    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    reports, failures = [], []
    for _ in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix="tw-evidence-bench-", dir=base))
        try:
            report = run_bench(args.procs, args.blocks, not args.no_fsync, folder)
            report["raw_fsync_appends_per_s_one_process"] = raw_fsync_rate(folder)
            report["load_average_1m"] = round(os.getloadavg()[0], 2)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        reports.append(report)
        print(json.dumps(report), flush=True)
        if report["lost"] or report["duplicated"] or report["torn_or_invalid"] or report["lines"] != report["appends"]:
            failures.append("lost, duplicated or torn lines")
    folder = Path(tempfile.mkdtemp(prefix="tw-evidence-bench-", dir=base))
    try:
        (folder / "source.py").write_text(_source())
        held = lock_timeout_check(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"lock_timeout": held}), flush=True)
    if held["outcome"] != "LockTimeout" or held["waited_s"] > held["timeout_s"] + 1:
        failures.append("lock timeout not honoured")

    rates = sorted(r["appends_per_s"] for r in reports)
    median = rates[len(rates) // 2]
    verdict = "meets" if median >= TARGET_APPENDS_PER_S else "below"
    print(
        f"median {median} appends/s over {len(rates)} runs ({args.procs} processes x {args.blocks} blocks, "
        f"fsync {'off' if args.no_fsync else 'on'}, {os.cpu_count()} CPUs): {verdict} the target of "
        f"{TARGET_APPENDS_PER_S}/s"
    )
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
