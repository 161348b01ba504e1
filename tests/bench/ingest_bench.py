"""Benchmark of the S1 ingest gate, A/B in one run (reported, not a timed test).

For each corpus size (default 1,000 / 10,000 / 100,000 artifacts of 100 hits,
written as the self-audit writes them: indented JSON, signed, each with the
provenance file collect writes beside it), measured side by side, the order
alternating between repeats:

* ``tw-gates ingest`` as the central workflow runs it (--require-hmac,
  --require-provenance, --registry binding every consumer to its key id): wall
  time (best of the repeats), CPU time of the process tree, and peak memory of
  the tree (sum of RSS, and PSS) sampled from /proc;
* the naive loop, in one process: for each file ``json.load`` +
  ``json.dumps(sort_keys=True)`` of the artifact without its signature + HMAC;
* the HMAC limit, in one process: read the file and HMAC its bytes (no
  parsing at all: the floor of any verifier);
* with --full-path, also ``tw-gates ingest`` with the fast path off (every
  artifact down the strict parser + pydantic + the key ring: the gate before).

Then the cost per artifact by stage, in one process on a sample (``--stages``).

Run:  python tests/bench/ingest_bench.py [--sizes 1000,10000,100000] [--repeat 3] [--full-path]
Targets (issue): >= 10,000 artifacts/s on 2 cores and >= 3x the naive loop;
peak memory flat from 1,000 to 100,000."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tw_gates.core.signing import KeyRing
from tw_gates.ingest import fast as fastmod
from tw_gates.ingest.checks import check_fresh, check_keys, check_origin
from tw_gates.ingest.ingest import key_binding
from tw_gates.ingest.judge import Policy, identity, judge, read_artifact
from tw_gates.ingest.provenance import provenance_json, read_provenance
from tw_gates.schemas.registry import load_registry

PATTERNS = ("jinja2-from-string", "dom-inner-html", "template-safe-filter", "vue-v-html", "django-mark-safe")
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


def kid_of(index: int) -> str:
    return f"bench-{index % 64:02d}"  # 64 consumer keys, each bound to its consumers


def key_of(kid: str) -> bytes:
    return f"{SECRET}-{kid}".encode()


# --- the corpus -----------------------------------------------------------------------


def _canonical(document: dict) -> bytes:
    # RFC 8785 for this schema (ASCII keys, no floats): what KeyRing.sign covers.
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_corpus(folder: Path, count: int, hits: int) -> int:
    """``count`` signed artifacts of ``hits`` hits, each with its provenance
    file; the registry; returns the bytes of the artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    total = 0
    # 64 keys (an environment variable cannot hold 100,000), each shared on purpose by its consumers.
    # JSON: a registry of 100,000 consumers in YAML takes PyYAML's pure-Python loader minutes.
    registry: dict = {"schema_version": "1.0", "shared_keys": [kid_of(i) for i in range(64)], "consumers": []}
    for index in range(count):
        repo, kid = f"bench-org/consumer-{index:06d}", kid_of(index)
        document = {
            "schema_version": "1.0",
            "repo": repo,
            "commit": f"{index:040x}",
            "branch": "main",
            "generated_at": now,
            "tool_version": "0.1.0",
            "hits": [
                {"path": f"src/module_{h % 17}/view_{h}.py", "line": 10 + h, "pattern": PATTERNS[h % len(PATTERNS)]}
                for h in range(hits)
            ],
        }
        value = hmac.new(key_of(kid), _canonical(document), hashlib.sha256).hexdigest()
        document["signature"] = {"alg": "HMAC-SHA256", "kid": kid, "value": value}
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()  # as self-audit writes it
        name = f"bench-org__consumer-{index:06d}.json"
        (folder / name).write_bytes(data)
        provenance = {
            "repo": repo,
            "run_id": 1000 + index,
            "run_attempt": 1,
            "workflow_path": ".github/workflows/tw-gates.yml",
            "event": "push",
            "head_branch": "main",
            "head_sha": f"{index:040x}",
            "artifact_id": 5000 + index,
            "artifact_name": "tw-self-audit",
            "artifact_digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "collected_at": now,
            "file": name,
        }
        (folder / f"{name}.provenance").write_text(json.dumps(provenance, indent=2))
        registry["consumers"].append({"repo": repo, "keys": [kid]})
        total += len(data)
    (folder.parent / f"registry-{count}.json").write_text(json.dumps(registry))
    return total


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".json"))


# --- the comparisons (one process each, in this interpreter) --------------------------


def naive_loop(files: list[Path], keys: dict[str, bytes]) -> int:
    """json.load + json.dumps(sort_keys) + HMAC: the simplest correct verifier."""
    ok = 0
    for path in files:
        with open(path, "rb") as handle:
            document = json.load(handle)
        signature = document.pop("signature")
        payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        mac = hmac.new(keys[signature["kid"]], payload, hashlib.sha256).hexdigest()
        ok += hmac.compare_digest(mac, signature["value"])
    return ok


def hmac_limit(files: list[Path], key: bytes) -> int:
    """Read the bytes and HMAC them: no parsing, no checks. The floor."""
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            total += len(hmac.new(key, handle.read(), hashlib.sha256).digest())
    return total


def timed(function, *args) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    function(*args)
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}


# --- tw-gates ingest as a process tree ------------------------------------------------


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (/proc/<pid>/task/<tid>/children)."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            values = {
                line.split(":")[0]: int(line.split()[1]) for line in handle if line.split(":")[0] in ("Rss", "Pss")
            }
        return values.get("Rss", 0), values.get("Pss", 0)
    except (OSError, ValueError):
        return 0, 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(argv: list[str], env: dict[str, str], *, sample_memory: bool = False) -> dict:
    """Run argv; with ``sample_memory``, sample the process tree's memory
    every 20 ms (that costs CPU, so timed runs go without it)."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = {"rss_kib": 0, "pss_kib": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pids = _tree(proc.pid)
            sizes = [_memory_kib(pid) for pid in pids]
            peak["rss_kib"] = max(peak["rss_kib"], sum(s[0] for s in sizes))
            peak["pss_kib"] = max(peak["pss_kib"], sum(s[1] for s in sizes))
            peak["processes"] = max(peak["processes"], len(pids))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    out, err = proc.communicate()
    done.set()
    if sample_memory:
        sampler.join()
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _children_cpu() - cpu_before,
        "exit_code": proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
        **peak,
    }


def gate_seconds(stdout: str) -> float | None:
    """The gate's own time from its summary line (start-up excluded)."""
    for line in stdout.splitlines():
        if line.startswith("ingest: ") and " in " in line:
            try:
                return float(line.rsplit(" in ", 1)[1].split("s", 1)[0])
            except ValueError:
                return None
    return None


# --- per stage ------------------------------------------------------------------------


def stages(files: list[Path], keys: dict[str, bytes], registry: Path) -> dict[str, float]:
    """CPU µs per artifact of each stage of the worker's path, in one process."""
    ring = KeyRing({k: v.decode() for k, v in keys.items()})
    fast = fastmod.FastPath.from_ring(ring)
    assert fast is not None, "the fast path stood down"
    binding = key_binding(load_registry(registry))
    base = Policy(ring=ring, require_hmac=True, max_age_s=86400, max_bytes=10 << 20, quarantine_dir=None)
    paths = [str(p) for p in files]
    datas = [read_artifact(p, 10 << 20) for p in paths]
    decoded = [fastmod._DECODER.decode(d) for d in datas]
    canonicals = [fastmod._ENCODER.encode(a) for a in decoded]
    payloads = [fastmod._without_signature(c, a.signature) for c, a in zip(canonicals, decoded, strict=True)]
    judged = [fast.judge(d, require_signature=True) for d in datas]
    origins = [read_provenance(p, d, required=True) for p, d in zip(paths, datas, strict=True)]

    def per(function, items) -> float:
        best = float("inf")
        for _ in range(3):
            cpu = time.process_time()
            for item in items:
                function(item)
            best = min(best, (time.process_time() - cpu) / len(items) * 1e6)
        return round(best, 1)

    result = {
        "read (lstat, open O_NOFOLLOW, fstat, read)": per(lambda p: read_artifact(p, 10 << 20), paths),
        "provenance (read sidecar, validate, sha256)": per(
            lambda i: read_provenance(paths[i], datas[i], required=True), range(len(paths))
        ),
        "escapes (one memchr for a backslash)": per(lambda d: b"\\" in d, datas),
        "decode + schema (msgspec, one pass)": per(fastmod._DECODER.decode, datas),
        "hit paths (scans of the joined paths)": per(
            lambda i: fastmod._paths_are_safe(decoded[i].hits, b"\\" in datas[i]), range(len(paths))
        ),
        "generated_at (UTC)": per(lambda a: fastmod._utc_time(a.generated_at), decoded),
        "canonical form (RFC 8785, from the structs) and the signed part": per(
            lambda a: fastmod._without_signature(fastmod._ENCODER.encode(a), a.signature), decoded
        ),
        "duplicate keys (count ':')": per(
            lambda i: datas[i].count(b":") + canonicals[i].count(b":"), range(len(paths))
        ),
        "HMAC": per(lambda p: hmac.new(keys["bench-00"], p, hashlib.sha256).hexdigest(), payloads),
        "identity, key binding, freshness": per(
            lambda i: (
                check_origin(judged[i].repo, origins[i]),
                check_keys(judged[i], origins[i], binding),
                check_fresh(judged[i], None, 86400, 300),
                identity(judged[i]),
            ),
            range(len(paths)),
        ),
        "JSON Lines line (+ provenance)": per(
            lambda i: fastmod.json_line(canonicals[i])[:-1] + b',"provenance":' + provenance_json(origins[i]) + b"}",
            range(len(paths)),
        ),
    }
    policy = Policy(**{**base.__dict__, "fast": fast, "binding": binding, "require_provenance": True})
    full = Policy(**{**base.__dict__, "binding": binding, "require_provenance": True})
    result["= the fast path alone (bytes to verified line)"] = per(
        lambda d: fast.judge(d, require_signature=True), datas
    )
    result["= judge(), whole, fast path"] = per(lambda p: judge(p, policy), paths)
    # One pass each over files not touched above, alternating: what a worker meets.
    fresh = corpus_files(files[0].parent)[len(files) : 2 * len(files)] or files
    for round_ in range(2):
        cpu = time.process_time()
        for path in fresh:
            judge(str(path), policy)
        result[f"= one pass, judge() (round {round_ + 1})"] = round((time.process_time() - cpu) / len(fresh) * 1e6, 1)
        cpu = time.process_time()
        naive_loop(fresh, keys)
        result[f"= one pass, naive loop (round {round_ + 1})"] = round(
            (time.process_time() - cpu) / len(fresh) * 1e6, 1
        )
    result["= judge(), whole, full path (before)"] = per(lambda p: judge(p, full), paths[: max(1, len(paths) // 4)])
    return result


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--hits", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="A/B rounds per size; the best is reported")
    parser.add_argument("--workers", type=int, help="passed to tw-gates ingest (default: every CPU)")
    parser.add_argument("--full-path", action="store_true", help="also run ingest with the fast path off")
    parser.add_argument(
        "--before",
        type=Path,
        default=Path(os.environ["TW_BENCH_BEFORE"]) if os.environ.get("TW_BENCH_BEFORE") else None,
        metavar="SCRIPTS",
        help="also run `tw-gates ingest --require-hmac` from another source tree's scripts/ folder "
        "(e.g. `git archive <commit> scripts | tar -x -C DIR`; default $TW_BENCH_BEFORE): the gate before, "
        "same files, same run",
    )
    parser.add_argument("--stages", type=int, default=2000, help="artifacts profiled per stage (0: skip)")
    parser.add_argument("--work", type=Path, help="keep the corpora here and reuse them (default: a temp folder)")
    args = parser.parse_args(argv)

    tw_gates = shutil.which("tw-gates", path=str(Path(sys.executable).parent)) or shutil.which("tw-gates")
    if not tw_gates:
        print("tw-gates is not installed in this environment", file=sys.stderr)
        return 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="tw-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keys = {kid_of(i): key_of(kid_of(i)) for i in range(64)}
    env = {
        **os.environ,
        "TW_HMAC_KEYS": json.dumps({k: v.decode() for k, v in keys.items()}),
        "TW_METRICS_DIR": str(work / "metrics"),
    }
    for name in ("TW_HMAC_KEY", "POLICY_REQUIRE_HMAC", "TW_INGEST_FAST_PATH"):
        env.pop(name, None)
    report: dict = {
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "hits_per_artifact": args.hits,
        "sizes": {},
    }
    try:
        for size in sizes:
            corpus = work / f"corpus-{size}"
            registry = work / f"registry-{size}.json"
            if not (registry.exists() and corpus.is_dir()):
                shutil.rmtree(corpus, ignore_errors=True)
                started = time.perf_counter()
                size_bytes = make_corpus(corpus, size, args.hits)
                print(
                    f"corpus {size}: {size_bytes / 2**20:.1f} MiB in {time.perf_counter() - started:.1f}s", flush=True
                )
            report["sizes"][str(size)] = measure(tw_gates, corpus, registry, size, keys, env, args, work)
            print(json.dumps({str(size): report["sizes"][str(size)]}, indent=2), flush=True)
        if args.stages:
            corpus = work / f"corpus-{sizes[-1]}"
            files = corpus_files(corpus)[: args.stages]
            report["stages_cpu_us_per_artifact"] = stages(files, keys, work / f"registry-{sizes[-1]}.json")
        report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(report, indent=2))
        print("BENCH-JSON " + json.dumps(bench_json(report)))
        return 0
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def bench_json(report: dict) -> dict:
    """The harness's summary (tests/bench/run_all.py): one row per corpus size."""
    headers = ["artifacts", "ingest (CLI, whole run)", "gate alone", "fast path off", "before", "naive loop"]
    headers += ["HMAC limit", "ingest / naive", "CPU us/artifact", "peak PSS"]
    rows, ratios = [], []
    for size, m in report["sizes"].items():
        rate = m["artifacts_per_s"]

        def per_s(what: str, rate: dict = rate) -> str:
            return f"{rate[what]:,}/s" if what in rate else "-"

        gate = m.get("ingest_gate_artifacts_per_s")
        rows.append(
            [
                f"{int(size):,}",
                per_s("ingest"),
                f"{gate:,}/s" if gate else "-",
                per_s("full"),
                per_s("before"),
                per_s("naive"),
                per_s("hmac"),
                f"{m['ratio_ingest_vs_naive']}x",
                f"{m['cpu_us_per_artifact']['ingest']}",
                f"{m['peak_pss_tree_mib']} MiB",
            ]
        )
        ratios.append(
            {
                "what": f"ingest {int(size):,} signed artifacts (artifacts/s; ratio above 1 is faster)",
                "ours": rate["ingest"],
                "unit": "/s",
                "compared_with": "naive json+HMAC loop",
                "baseline": rate["naive"],
                "ratio": m["ratio_ingest_vs_naive"],
                "target": ">= 10,000/s and >= 3x naive",
                "met": rate["ingest"] >= 10_000 and m["ratio_ingest_vs_naive"] >= 3,
            }
        )
    notes = [
        f"{report['hits_per_artifact']} hits per artifact; --require-hmac --require-provenance --registry; "
        f"{report['machine']['cpus']} CPUs; load {report['machine']['load_average_at_start']} at the start, "
        f"{report['machine'].get('load_average_at_end')} at the end",
        "best of the A/B rounds per contender; 'gate alone' excludes interpreter start-up and imports",
    ]
    stages = report.get("stages_cpu_us_per_artifact")
    if stages:
        notes.append("CPU us per artifact by stage: " + "; ".join(f"{k} {v}" for k, v in stages.items()))
    return {"bench": "ingest", "ratios": ratios, "table": {"headers": headers, "rows": rows}, "notes": notes}


def _gate(argv: list[str], env: dict[str, str], *, expect_lines: Path | None = None, size: int = 0) -> dict:
    result = run_measured(argv, env)
    if expect_lines is not None:
        if result["exit_code"] != 0:
            print(result["stdout"][-2000:], result["stderr"][-2000:], file=sys.stderr)
            raise SystemExit(1)
        with open(expect_lines, "rb") as handle:
            lines = sum(1 for _ in handle)
        if lines != size:
            raise SystemExit(f"{lines} accepted lines for {size} artifacts")
    result["gate_seconds"] = gate_seconds(result["stdout"])
    return result


def measure(tw_gates: str, corpus: Path, registry: Path, size: int, keys, env, args, work: Path) -> dict:
    files = corpus_files(corpus)
    accepted = work / "accepted.jsonl"
    command = [tw_gates, "ingest", "--artifact", str(corpus), "--require-hmac", "--require-provenance"]
    command += ["--registry", str(registry), "--out", str(accepted), "--quarantine", str(work / "quarantine")]
    command += ["--workers", str(args.workers)] if args.workers else []
    before = [sys.executable, "-m", "tw_gates", "ingest", "--artifact", str(corpus), "--require-hmac"]
    before += ["--out", str(work / "before.jsonl"), "--quarantine", str(work / "quarantine-before")]
    contenders = {
        "ingest": lambda: _gate(command, env, expect_lines=accepted, size=size),
        "naive": lambda: timed(naive_loop, files, keys),
        "hmac": lambda: timed(hmac_limit, files, keys["bench-00"]),
    }
    if args.full_path:
        contenders["full"] = lambda: _gate(command, {**env, "TW_INGEST_FAST_PATH": "false"})
    if args.before:
        contenders["before"] = lambda: _gate(before, {**env, "PYTHONPATH": str(args.before)})
    os.sync()
    runs: dict[str, list[dict]] = {what: [] for what in contenders}
    for round_ in range(max(1, args.repeat)):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        for what in order:
            runs[what].append(contenders[what]())
    memory = run_measured(command, env, sample_memory=True)
    # The registry's key binding grows with the registry (every shard loads all of it), not with
    # the artifacts: the same run without it shows what the artifacts themselves cost.
    unbound = [part for part in command if part not in ("--registry", str(registry))]
    memory_unbound = run_measured(unbound, env, sample_memory=True)
    best = {what: min(r, key=lambda x: x["seconds"]) for what, r in runs.items()}
    rate = {what: round(size / b["seconds"]) for what, b in best.items()}
    out = {
        "load_average": round(os.getloadavg()[0], 2),
        "artifacts_per_s": rate,
        "seconds_best": {what: round(b["seconds"], 3) for what, b in best.items()},
        "cpu_seconds": {what: round(b["cpu_seconds"], 3) for what, b in best.items()},
        "gate_seconds_without_startup": {w: b.get("gate_seconds") for w, b in best.items() if "gate_seconds" in b},
        "ingest_gate_artifacts_per_s": round(size / best["ingest"]["gate_seconds"])
        if best["ingest"].get("gate_seconds")
        else None,
        "ratio_ingest_vs_naive": round(rate["ingest"] / rate["naive"], 2),
        "ratio_ingest_vs_hmac_limit": round(rate["ingest"] / rate["hmac"], 2),
        "cpu_us_per_artifact": {what: round(b["cpu_seconds"] / size * 1e6, 1) for what, b in best.items()},
        "peak_rss_tree_mib": round(memory["rss_kib"] / 1024, 1),
        "peak_pss_tree_mib": round(memory["pss_kib"] / 1024, 1),
        "peak_rss_tree_mib_without_registry": round(memory_unbound["rss_kib"] / 1024, 1),
        "peak_pss_tree_mib_without_registry": round(memory_unbound["pss_kib"] / 1024, 1),
        "processes": memory["processes"],
    }
    for other in ("full", "before"):
        if other in rate:
            out[f"ratio_ingest_vs_{other}"] = round(rate["ingest"] / rate[other], 2)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
