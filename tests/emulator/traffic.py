"""Every API exchange the emulator answers, handed to observers in-process.

The contract test (``tests/contract``) registers one that checks each request and
response against GitHub's published REST description. Observers run on the
server's thread after the answer is built and before it is sent; an observer that
raises is reported on stderr and never changes the answer.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exchange:
    method: str
    path: str  # without the query
    query: list[tuple[str, str]]
    headers: dict[str, str]  # request headers, names lower-cased
    body: bytes
    status: int
    response_body: Any  # JSON-able, bytes or None
    response_headers: dict[str, str] = field(default_factory=dict)
    checked: bool = True  # False inside ``GitHubEmulator.unchecked()``: deliberately off-contract


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    token_kind: str | None
    login: str | None
    timestamp: float  # when the answer was ready
    fault: str | None = None
    sent_token: bool = False  # an Authorization header was present (known token or not)
    received: float = 0.0  # when the request arrived


Observer = Callable[[Exchange], None]
_observers: list[Observer] = []
_lock = threading.Lock()


def add_observer(observer: Observer) -> None:
    with _lock:
        if observer not in _observers:
            _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    with _lock:
        if observer in _observers:
            _observers.remove(observer)


def publish(exchange: Exchange) -> None:
    with _lock:
        observers = list(_observers)
    for observer in observers:
        try:
            observer(exchange)
        except Exception:  # an observer's bug must not look like GitHub's answer
            traceback.print_exc(file=sys.stderr)
