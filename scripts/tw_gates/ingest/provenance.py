"""Provenance travels from collect to ingest in a sidecar file:
``<name>.json.provenance`` beside each collected ``<name>.json``, written by
collect from the REST API (the repository, run, workflow, event, branch and
artifact it came from, and the sha256 of the file's bytes).

One small file per artifact, read by the worker that judges the artifact:
nothing is held for the whole run, so memory stays flat however many
artifacts a run judges, and no record crosses a process boundary.

An artifact without a sidecar (handed to ingest directly: a consumer's own
CI, a local check) has no collection source, so there is no repository to
bind it to; under ``--require-provenance`` (the central workflow) it is
rejected as ``missing_provenance`` instead."""

from __future__ import annotations

import hashlib
import os

from pydantic import ValidationError

from tw_gates.ingest.reasons import Rejection, show
from tw_gates.ingest.safe_read import NotRegular, TooLarge, read_no_follow
from tw_gates.schemas.consumer import Provenance, ProvenanceSidecar

SUFFIX = ".provenance"
MAX_SIDECAR_BYTES = 64 * 1024
_EXCLUDE = {"file"}


def sidecar_path(artifact_path: str) -> str:
    return artifact_path + SUFFIX


def read_provenance(path: str, data: bytes, *, required: bool) -> ProvenanceSidecar | None:
    """The provenance collect recorded for the artifact at ``path`` (whose
    bytes are ``data``), None when there is none and none is required."""
    where = sidecar_path(path)
    try:
        raw = read_no_follow(where, MAX_SIDECAR_BYTES)
    except FileNotFoundError:
        if required:
            raise Rejection(
                "missing_provenance",
                f"no {os.path.basename(where)} beside it: not collected by `tw-gates collect`, "
                "so nothing says which repository it came from (--require-provenance)",
            ) from None
        return None
    except (NotRegular, TooLarge, OSError) as exc:
        raise Rejection("bad_provenance", f"{os.path.basename(where)}: {exc}") from None
    try:
        record = ProvenanceSidecar.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where_in = ".".join(str(p) for p in first.get("loc", ())) or "document"
        raise Rejection("bad_provenance", f"{os.path.basename(where)}: {where_in}: {first.get('msg')}") from None
    if record.file != os.path.basename(path):
        raise Rejection(
            "bad_provenance", f"{os.path.basename(where)} describes {show(record.file, 100)}, not this file"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != record.sha256:
        raise Rejection(
            "bad_provenance",
            f"the file's sha256 is {digest[:16]}..., collect recorded {record.sha256[:16]}... "
            "(changed after it was collected)",
        )
    return record


def provenance_json(record: Provenance) -> bytes:
    """The ``provenance`` member's value in the accepted record."""
    return record.model_dump_json(exclude=_EXCLUDE).encode("utf-8")
