"""Judging many artifacts: in-process for a few, a pool of forked worker
processes for many; verdicts come back in input order."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterable, Iterator

from tw_gates.ingest.judge import Policy, Verdict, judge

# Below this many artifacts a worker pool costs more than it saves.
POOL_THRESHOLD = 64
CHUNK_SIZE = 32

_POLICY: Policy | None = None


def _init_worker(policy: Policy) -> None:
    global _POLICY
    _POLICY = policy


def _judge_in_worker(path: str) -> Verdict:
    if _POLICY is None:  # pragma: no cover - the pool's initializer sets it
        raise RuntimeError("ingest worker started without a policy")
    return judge(path, _POLICY)


def judge_all(paths: Iterable[str], policy: Policy, *, workers: int) -> Iterator[Verdict]:
    """Verdicts in input order; a pool of ``workers`` processes when there
    are enough artifacts to pay for it."""
    paths = iter(paths)
    head = list(itertools.islice(paths, POOL_THRESHOLD))
    if workers <= 1 or len(head) < POOL_THRESHOLD:
        _init_worker(policy)
        yield from (judge(p, policy) for p in itertools.chain(head, paths))
        return
    # fork: the workers inherit the loaded modules (no re-import per worker);
    # tw-gates runs on Linux only (R2).
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(policy,)) as pool:
        yield from pool.imap(_judge_in_worker, itertools.chain(head, paths), chunksize=CHUNK_SIZE)
