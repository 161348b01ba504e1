"""The contract check of the whole test run (pytest side).

Every exchange any in-process GitHub emulator answers is checked against GitHub's
REST description (``validator.Contract``) as it happens. A test during which a
request or a response broke the contract fails (in its teardown) with the list of
violations; the run ends with one line of totals (per xdist worker, summed on the
controller). ``TW_CONTRACT_REPORT=path.json`` also writes them as JSON.

Requests a test sends off the contract on purpose (an unknown route, bad JSON, to
test the emulator's own answers) go inside ``with emu.unchecked():``.

Loaded through ``tests/emulator/fixtures.py`` (which ``tests/conftest.py`` imports).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.validator import Contract, Violation
from tests.emulator import traffic

__all__ = ["RECORDER", "github_contract", "pytest_sessionfinish", "pytest_terminal_summary", "pytest_testnodedown"]


class Recorder:
    """Counts and violations of every exchange seen in this process."""

    def __init__(self) -> None:
        self._contract: Contract | None = None
        self._lock = threading.Lock()
        self.requests = 0
        self.exempt = 0
        self.by_operation: Counter[str] = Counter()
        self.product_requests: Counter[str] = Counter()
        self.violations: list[Violation] = []

    @property
    def contract(self) -> Contract:
        if self._contract is None:
            self._contract = Contract()
        return self._contract

    def observe(self, exchange: traffic.Exchange) -> None:
        if not exchange.checked:
            with self._lock:
                self.exempt += 1
            return
        found = self.contract.check(exchange)
        operation = self.contract.match(exchange.method, exchange.path)
        with self._lock:
            self.requests += 1
            if operation is not None:
                self.by_operation[operation.name] += 1
                if exchange.headers.get("user-agent", "").startswith("tw-gates/"):
                    self.product_requests[operation.name] += 1
            self.violations.extend(found)

    def totals(self) -> dict[str, Any]:
        with self._lock:
            return {
                "description": f"{self.contract.source.get('package')}@{self.contract.source.get('version')}",
                "operations_in_description": len(self.contract.names),
                "requests": self.requests,
                "responses": self.requests,
                "exempt": self.exempt,
                "operations": dict(self.by_operation),
                "product_operations": dict(self.product_requests),
                "violations": sorted({str(v) for v in self.violations}),
            }


RECORDER = Recorder()
traffic.add_observer(RECORDER.observe)


@pytest.fixture(autouse=True)
def github_contract() -> Iterator[Recorder]:
    """Fails the test when an exchange during it broke GitHub's contract."""
    start = len(RECORDER.violations)
    yield RECORDER
    new = RECORDER.violations[start:]
    if new:
        lines = sorted({str(v) for v in new})
        pytest.fail(
            f"{len(lines)} exchange(s) with the GitHub emulator broke GitHub's REST description:\n  "
            + "\n  ".join(lines[:40]),
            pytrace=False,
        )


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key in ("requests", "responses", "exempt"):
        into[key] = into.get(key, 0) + part.get(key, 0)
    for key in ("operations", "product_operations"):
        merged = Counter(into.get(key, {}))
        merged.update(part.get(key, {}))
        into[key] = dict(merged)
    into["violations"] = sorted(set(into.get("violations", [])) | set(part.get("violations", [])))
    for key in ("description", "operations_in_description"):
        into.setdefault(key, part.get(key))


_WORKERS: dict[str, Any] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and RECORDER.requests + RECORDER.exempt:
        workeroutput["github_contract"] = json.dumps(RECORDER.totals())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    part = getattr(node, "workeroutput", {}).get("github_contract")
    if part:
        _merge(_WORKERS, json.loads(part))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    totals = dict(_WORKERS)
    if RECORDER.requests + RECORDER.exempt:
        _merge(totals, RECORDER.totals())
    if not totals:
        return
    used = totals["operations"]
    terminalreporter.write_line(
        f"GitHub contract ({totals['description']}): {totals['requests']} requests and {totals['responses']} "
        f"responses validated over {len(used)} of {totals['operations_in_description']} operations "
        f"({len(totals['product_operations'])} sent by tw-gates itself), {len(totals['violations'])} violation(s), "
        f"{totals['exempt']} deliberately off-contract"
    )
    report = os.environ.get("TW_CONTRACT_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as fh:
            json.dump(totals, fh, indent=1, sort_keys=True)
