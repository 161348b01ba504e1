"""Evidence append benchmark, A/B in the same run: N processes each append M
evidence records to one evidence_blocks.jsonl

* A (raw): a plain portalocker loop: lock (blocking), write the line, unlock,
  fdatasync: what any locked, durable append costs on this disk;
* B (tw-gates): ``EvidenceLog.add``: the same lock and fdatasync plus what
  makes the log tamper-evident and safe: what other writers appended is read
  (the duplicate check and the chain), the record is chained to the one
  before it and MAC'd, the signed head is rewritten.

A and B alternate (B first on odd runs) and each run prints both times and
the ratio B/A; the median ratio is the result (issue 16: within 1.2x at 8
writers). B's file is then checked: every record present once, none torn, and
``evidence verify`` passes on the chain and its signed head. A last part
shows that a writer facing a held lock gives up at its timeout.

    python tests/bench/evidence_bench.py [--procs 8] [--blocks 1000] [--runs 5] [--no-key] [--dir DIR]

Exit 1 if any record is lost, duplicated or torn, the chain does not verify,
or the lock timeout does not hold. Timings on a shared machine are noisy: the
load average is printed with every run."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.2
KEY = "evidence-bench-signing-key-0123456789abcdef"


def _source() -> str:
    lines = [f"def function_{i}(value):  # evidence line {i}\n    return value * {i}\n" for i in range(30)]
    return "".join(lines)


def _blocks(worker: int, count: int):
    from tw_gates.phases.evidence import make_block

    return [
        make_block(
            f"W{worker:02d}-{i:05d}", i % 5, "source.py", f"{1 + i % 40}-{5 + i % 40}", f"worker {worker} block {i}"
        )
        for i in range(count)
    ]


def _ring(signed: bool):
    from tw_gates.core.signing import EVIDENCE_LOG, KeyRing

    return KeyRing(signing_key=KEY, signing_kid="bench", doc_type=EVIDENCE_LOG) if signed else None


def _product_writer(root: str, evidence: str, worker: int, blocks: int, signed: bool, start, results) -> None:
    from tw_gates.phases.evidence_log import EvidenceLog

    os.chdir(root)
    made = _blocks(worker, blocks)  # built before the clock starts: the benchmark measures appending
    log = EvidenceLog(evidence, lock_timeout=60, ring=_ring(signed))
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    for block in made:
        log.add(block)
    results.put((worker, began, time.perf_counter(), time.process_time() - cpu))


def _raw_writer(root: str, evidence: str, worker: int, blocks: int, signed: bool, start, results) -> None:
    import portalocker

    os.chdir(root)
    # Lines of the same length as B's records (the block plus the chain and MAC members).
    chain = ',"seq":1,"prev":"' + "0" * 64 + '","prev_id":"W00-00000","kid":"bench","mac":"' + "0" * 64 + '"}'
    lines = [(b.model_dump_json()[:-1] + chain + "\n").encode() for b in _blocks(worker, blocks)]
    with open(evidence, "ab", buffering=0) as handle:
        fd = handle.fileno()
        start.wait()
        began, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE)
            os.write(fd, line)
            portalocker.unlock(handle)
            os.fdatasync(fd)
        results.put((worker, began, time.perf_counter(), time.process_time() - cpu))


def _race(target, procs: int, blocks: int, signed: bool, folder: Path) -> tuple[float, float, Path]:
    """(wall seconds from the first start to the last finish, CPU seconds the writers spent
    appending, the log)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.py").write_text(_source())
    evidence = folder / "evidence_blocks.jsonl"
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=target, args=(str(folder), str(evidence), w, blocks, signed, start, results))
        for w in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(1.0)  # let every worker build its lines and reach the start line
    start.set()
    timings = [results.get(timeout=900) for _ in workers]
    for w in workers:
        w.join(60)
    if any(w.exitcode for w in workers):
        raise SystemExit(f"a writer failed: exit codes {sorted({w.exitcode for w in workers})}")
    return max(t[2] for t in timings) - min(t[1] for t in timings), sum(t[3] for t in timings), evidence


def check_product(evidence: Path, procs: int, blocks: int, signed: bool) -> dict:
    from tw_gates.phases.evidence_verify import verify_log
    from tw_gates.schemas.evidence import EvidenceRecord

    data = evidence.read_bytes()
    raw_lines = data.split(b"\n")
    torn = 0 if raw_lines[-1] == b"" else 1
    ids, bad = [], 0
    for raw in raw_lines[:-1]:
        try:
            ids.append(EvidenceRecord.model_validate_json(raw).evidence_id)
        except ValueError:
            bad += 1
    expected = {f"W{w:02d}-{i:05d}" for w in range(procs) for i in range(blocks)}
    result = verify_log(evidence, root=evidence.parent, ring=_ring(signed))
    return {
        "lines": len(raw_lines) - 1,
        "lost": len(expected - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "torn_or_invalid": bad + torn,
        "verify_failures": len(result.failures),
        "chain": result.chain,
    }


def _hold(path: str, ready, release) -> None:
    import portalocker

    with portalocker.Lock(path, mode="a", flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING):
        ready.set()
        release.wait(60)


def lock_timeout_check(folder: Path, timeout: float = 0.5) -> dict:
    """A writer facing a held lock must fail after ~timeout with a message, not block."""
    from tw_gates.core.fsio import LockTimeout
    from tw_gates.phases.evidence import make_block
    from tw_gates.phases.evidence_log import EvidenceLog

    (folder / "source.py").write_text(_source())
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
    parser.add_argument("--blocks", type=int, default=1000, help="records per process")
    parser.add_argument("--runs", type=int, default=5, help="A/B pairs; the median ratio is the result")
    parser.add_argument("--no-key", action="store_true", help="B without TW_EVIDENCE_KEY (no MACs, unsigned head)")
    parser.add_argument("--dir", help="folder on the filesystem to measure (default: a temp folder)")
    args = parser.parse_args()
    signed = not args.no_key
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    ratios, failures = [], []
    for run in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix="tw-evidence-bench-", dir=base))
        try:
            order = ("raw", "tw-gates") if run % 2 == 0 else ("tw-gates", "raw")
            seconds: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for which in order:
                target = _raw_writer if which == "raw" else _product_writer
                seconds[which], cpu[which], evidence = _race(target, args.procs, args.blocks, signed, folder / which)
                if which == "tw-gates":
                    checked = check_product(evidence, args.procs, args.blocks, signed)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        ratio = seconds["tw-gates"] / seconds["raw"]
        ratios.append(ratio)
        appends = args.procs * args.blocks
        report = {
            "run": run + 1,
            "order": "/".join(order),
            "raw_s": round(seconds["raw"], 3),
            "tw_gates_s": round(seconds["tw-gates"], 3),
            "raw_appends_per_s": round(appends / seconds["raw"]),
            "tw_gates_appends_per_s": round(appends / seconds["tw-gates"]),
            "ratio": round(ratio, 3),
            "raw_cpu_s": round(cpu["raw"], 3),
            "tw_gates_cpu_s": round(cpu["tw-gates"], 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
            **checked,
        }
        print(json.dumps(report), flush=True)
        if checked["lost"] or checked["duplicated"] or checked["torn_or_invalid"] or checked["verify_failures"]:
            failures.append(f"run {run + 1}: lost, duplicated or torn records, or the chain does not verify")
    folder = Path(tempfile.mkdtemp(prefix="tw-evidence-bench-", dir=base))
    try:
        held = lock_timeout_check(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"lock_timeout": held}), flush=True)
    if held["outcome"] != "LockTimeout" or held["waited_s"] > held["timeout_s"] + 1:
        failures.append("lock timeout not honoured")
    median = statistics.median(ratios)
    verdict = "within" if median <= TARGET_RATIO else "above"
    print(
        f"median ratio tw-gates/raw {median:.3f} over {len(ratios)} A/B runs ({args.procs} processes x "
        f"{args.blocks} records, fdatasync, {'signed' if signed else 'unsigned'}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}): {verdict} the target of {TARGET_RATIO}x"
    )
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
