"""Judging many artifacts: in-process for a few, forked worker processes for
many; verdicts come back in input order.

Each worker gets batches of paths over its own pipe and answers each batch
with one message (``marshal``: plain tuples, bytes and strings between our
own processes), so the cost between processes is per batch, not per
artifact, and no helper thread in the parent touches every verdict. Batches
go round-robin, at most ``IN_FLIGHT`` per worker, and are read back in the
order they were sent: the input order."""

from __future__ import annotations

import contextlib
import gc
import itertools
import marshal
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection

from tw_gates.core.errors import TwGatesError
from tw_gates.ingest.judge import Policy, Verdict, judge

# Below this many artifacts worker processes cost more than they save.
POOL_THRESHOLD = 64
BATCH = 128
IN_FLIGHT = 2


def _serve(connection: Connection, policy: Policy) -> None:
    """A worker: judge each batch it is sent until it is sent nothing (or
    the parent is gone)."""
    try:
        while message := connection.recv_bytes():
            paths = marshal.loads(message)  # noqa: S302 - from our own parent process
            connection.send_bytes(marshal.dumps([tuple(judge(path, policy)) for path in paths]))
    except (EOFError, BrokenPipeError):
        return


class _Workers:
    def __init__(self, count: int, policy: Policy) -> None:
        context = multiprocessing.get_context("fork")  # Linux only (R2): inherits the loaded modules
        self.connections: list[Connection] = []
        self.processes: list = []
        for _ in range(count):
            mine, theirs = context.Pipe(duplex=True)
            process = context.Process(target=_serve, args=(theirs, policy), daemon=True)
            process.start()
            theirs.close()
            self.connections.append(mine)
            self.processes.append(process)

    def send(self, index: int, paths: list[str]) -> None:
        self.connections[index].send_bytes(marshal.dumps(paths))

    def receive(self, index: int) -> list[Verdict]:
        try:
            message = self.connections[index].recv_bytes()
        except (EOFError, OSError):
            process = self.processes[index]
            process.join(timeout=5)
            code = process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise TwGatesError(f"ingest worker {index + 1} stopped ({how}) before judging its artifacts") from None
        return [Verdict(*fields) for fields in marshal.loads(message)]  # noqa: S302 - from our own worker

    def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.send_bytes(b"")
            connection.close()
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


def _batches(paths: Iterator[str]) -> Iterator[list[str]]:
    while batch := list(itertools.islice(paths, BATCH)):
        yield batch


def judge_all(paths: Iterable[str], policy: Policy, *, workers: int) -> Iterator[Verdict]:
    """Verdicts in input order; worker processes when there are enough
    artifacts to pay for them."""
    paths = iter(paths)
    head = list(itertools.islice(paths, POOL_THRESHOLD))
    if workers <= 1 or len(head) < POOL_THRESHOLD:
        yield from (judge(p, policy) for p in itertools.chain(head, paths))
        return
    # What exists now (modules, the policy, the registry's key binding) is
    # frozen out of the garbage collector's scans: the workers never walk it,
    # nor copy its pages by touching it.
    gc.freeze()
    pool = _Workers(workers, policy)
    try:
        batches = _batches(itertools.chain(head, paths))
        order: deque[int] = deque()
        for index in itertools.chain.from_iterable(itertools.repeat(range(workers), IN_FLIGHT)):
            batch = next(batches, None)
            if batch is None:
                break
            pool.send(index, batch)
            order.append(index)
        while order:
            index = order.popleft()
            verdicts = pool.receive(index)
            batch = next(batches, None)
            if batch is not None:
                pool.send(index, batch)
                order.append(index)
            yield from verdicts
    finally:
        pool.close()
        gc.unfreeze()
