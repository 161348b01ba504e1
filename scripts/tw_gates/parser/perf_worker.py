"""The worker process of a builtin-target capture: builds the parser once,
parses every document of the corpus (warm-up, then measured), prints the
latencies and its own peak RSS as JSON."""

from __future__ import annotations

import json
import resource
import sys
import time

from tw_gates.parser.perf_corpus import load_corpus
from tw_gates.parser.targets import build


def worker_main() -> int:
    """``python -m tw_gates.parser.perf_worker``: the builtin-target worker.

    Reads {"target", "corpus", "warmup", "runs"} on stdin, prints
    {"latencies_ms": [...], "peak_rss_kib": N} (latencies in document order,
    runs inner) on stdout."""
    request = json.loads(sys.stdin.read())
    parser = build(request["target"])
    texts = [data.decode("utf-8", "replace") for _, data in load_corpus(request["corpus"]).documents]
    for _ in range(int(request["warmup"])):
        for text in texts:
            parser.render(text)
    latencies = []
    clock = time.perf_counter_ns
    for text in texts:
        for _ in range(int(request["runs"])):
            started = clock()
            parser.render(text)
            latencies.append((clock() - started) / 1e6)
    json.dump({"latencies_ms": latencies, "peak_rss_kib": _own_peak_rss_kib()}, sys.stdout)
    return 0


def _own_peak_rss_kib() -> int:
    """This process's peak RSS since exec.

    VmHWM, not getrusage: on Linux ru_maxrss keeps the high-water mark of the
    memory the process had before exec, i.e. a copy of the forking parent
    (tw-gates itself), which would hide the parser's own growth."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    raise SystemExit(worker_main())
