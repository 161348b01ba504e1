"""Steps 1-3, the consumer's side: the platform guard (R2), the example
consumer's signed self-audit (S1) and the ingest gate rejecting a tampered
copy of its artifact (S1)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from tw_gates.chain.platform import PlatformSettings, platform
from tw_gates.chain.unregistered_hits import path_matches
from tw_gates.core.fsio import atomic_write_bytes
from tw_gates.demo.model import (
    CODE_PATHS,
    CONSUMER_BRANCH,
    CONSUMER_REPO,
    Demo,
    Outcome,
    count_by_severity,
    explicit,
    show,
)
from tw_gates.ingest.ingest import IngestSettings, Verdict, ingest
from tw_gates.schemas.severity import SEVERITIES
from tw_gates.self_audit.self_audit import SelfAuditSettings, self_audit

# --- 1. R2 ------------------------------------------------------------------------------


def step_platform(demo: Demo) -> Outcome:
    result = platform(PlatformSettings(platform=sys.platform, runner_os=os.environ.get("RUNNER_OS")))
    return Outcome("PASS" if result.linux else "FAIL", result.message.removeprefix("R2 platform: "))


# --- 2. S1: the consumer's self-audit -----------------------------------------------------


def _content_digest(folder: Path) -> str:
    """A stand-in commit id when the checkout has no git HEAD: the SHA-1 of
    the example's file names and bytes (the same example, the same id)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def step_self_audit(demo: Demo) -> Outcome:
    commit, origin = (
        (demo.head, "the checkout's HEAD")
        if demo.head
        else (_content_digest(demo.consumer), "no git HEAD: a digest of the example's files")
    )
    settings = explicit(
        SelfAuditSettings,
        repo_dir=demo.consumer,
        out=demo.path("consumer", "tw-self-audit.json"),
        sarif=demo.path("consumer", "tw-self-audit.sarif"),
        repo=CONSUMER_REPO,
        commit=commit,
        branch=CONSUMER_BRANCH,
        **demo.signing,
    )
    result = self_audit(settings, progress=demo.echo)
    demo.self_audit = result
    return Outcome(
        "PASS",
        (
            f"{len(result.hits)} hits ({count_by_severity(result.hits)}) in {result.files_scanned} files of "
            f"{CONSUMER_REPO}@{commit[:12]} ({origin}), signed with key {result.signed_kid} -> "
            f"{show(result.artifact)}, SARIF {result.sarif.name if result.sarif else 'none'}"
        ),
        short=f"{len(result.hits)} hits, artifact signed ({result.signed_kid})",
    )


# --- 3. S1: the ingest gate ---------------------------------------------------------------


def _hit_to_hide(hits: list[Any]) -> Any:
    """The most severe hit outside the registered code paths: what someone
    hiding a finding would remove."""
    outside = [h for h in hits if path_matches(h.path, CODE_PATHS) is None] or list(hits)
    return min(outside, key=lambda h: (SEVERITIES.index(h.severity), h.path, h.line)) if outside else None


def step_ingest(demo: Demo) -> Outcome:
    genuine = demo.self_audit.artifact
    hidden = _hit_to_hide(demo.self_audit.hits)
    if hidden is None:
        return Outcome("FAIL", "the example consumer has no hits, so there is nothing to hide in a tampered copy")
    document = json.loads(genuine.read_bytes())
    document["hits"] = [
        h
        for h in document["hits"]
        if (h["path"], h["line"], h["pattern"]) != (hidden.path, hidden.line, hidden.pattern)
    ]
    tampered = demo.path("consumer", "tw-self-audit.tampered.json")  # the signature is kept as it was
    atomic_write_bytes(tampered, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    demo.hidden = hidden

    verdicts: list[Verdict] = []
    accepted = demo.path("accepted.jsonl")
    settings = explicit(
        IngestSettings,
        artifacts=[str(genuine), str(tampered)],
        require_hmac=True,
        quarantine=demo.path("quarantine"),
        out=accepted,
        workers=1,
        **demo.signing,
    )
    result = ingest(settings, on_verdict=verdicts.append, progress=demo.echo)
    by_path = {v.path: v for v in verdicts}
    genuine_verdict, tampered_verdict = by_path.get(str(genuine)), by_path.get(str(tampered))
    genuine_accepted = genuine_verdict is not None and genuine_verdict.accepted
    rejected_as_tampered = tampered_verdict is not None and tampered_verdict.reason == "bad_signature"
    quarantined = tampered_verdict.quarantined if tampered_verdict is not None else None
    counts_right = result.accepted == 1 and result.rejected == 1
    if not (counts_right and genuine_accepted and rejected_as_tampered and quarantined):
        said = "; ".join(f"{Path(v.path).name}: {v.reason or 'accepted'}: {v.message}" for v in verdicts)
        return Outcome(
            "FAIL",
            f"expected the genuine artifact accepted and the tampered copy rejected "
            f"(bad_signature); got {result.accepted} accepted, {result.rejected} rejected: {said}",
        )
    demo.accepted = accepted
    return Outcome(
        "EXPECTED",
        (
            f"tampered copy (hides {hidden.path}:{hidden.line} {hidden.pattern}, {hidden.severity}; signature kept) "
            f"REJECTED bad_signature, quarantined as {show(Path(quarantined))}; "
            f"genuine artifact accepted -> {show(accepted)}"
        ),
        short="1 accepted, 1 rejected (bad_signature), quarantined",
        expected="REJECTION",
    )
