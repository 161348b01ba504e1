"""The control plane of standalone mode: ``/_emulator/*`` (no auth, not logged, not rate limited)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .router import Response, Router, error

CONTROL = Router()


def handle(emu: Any, method: str, path: str, raw_body: bytes) -> Response:
    match = CONTROL.match(method, path)
    if match is None:
        return error(404, "Not Found")
    try:
        body = json.loads(raw_body) if raw_body.strip() else None
    except ValueError:
        return error(400, "Problems parsing JSON")
    try:
        return match[0].handler(emu, body)
    except (ValueError, TypeError, KeyError) as exc:
        return error(422, f"bad control request: {exc}")


@CONTROL.route("GET", "/_emulator/state", auth=False)
def _get_state(emu: Any, body: Any) -> Response:
    return Response(200, emu.dump_state())


@CONTROL.route("POST", "/_emulator/state", auth=False)
def _put_state(emu: Any, body: Any) -> Response:
    emu.load_state(body or {})
    return Response(200, emu.dump_state())


@CONTROL.route("GET", "/_emulator/requests", auth=False)
def _get_requests(emu: Any, body: Any) -> Response:
    return Response(200, [asdict(r) for r in emu.requests])


@CONTROL.route("DELETE", "/_emulator/requests", auth=False)
def _clear_requests(emu: Any, body: Any) -> Response:
    emu.clear_requests()
    return Response(204)


@CONTROL.route("GET", "/_emulator/faults", auth=False)
def _get_faults(emu: Any, body: Any) -> Response:
    with emu.state.lock:
        return Response(200, [f.to_dict() for f in emu.faults.faults])


@CONTROL.route("POST", "/_emulator/faults", auth=False)
def _add_fault(emu: Any, body: Any) -> Response:
    body = dict(body or {})
    fault = emu.inject(
        body.pop("kind"),
        method=body.pop("method", None),
        path=body.pop("path", None),
        times=body.pop("times", 1),
        after=body.pop("after", 0),
        **body.pop("params", {}),
        **body,
    )
    return Response(201, fault.to_dict())


@CONTROL.route("DELETE", "/_emulator/faults", auth=False)
def _clear_faults(emu: Any, body: Any) -> Response:
    emu.clear_faults()
    return Response(204)
