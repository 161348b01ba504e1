"""The data contracts (docs/architecture.md, and each command's doc page), each a pydantic v2 model.

``tw-gates schema NAME`` prints a model's JSON Schema. The registry maps the
public name to ``module:Model`` and imports lazily."""

from __future__ import annotations

import importlib

from tw_gates.core.errors import UsageError

REGISTRY: dict[str, str] = {
    "consumer-artifact": "tw_gates.schemas.consumer:ConsumerArtifact",
    "accepted-record": "tw_gates.schemas.consumer:AcceptedRecord",
    "provenance": "tw_gates.schemas.consumer:ProvenanceSidecar",
    "audit-report": "tw_gates.schemas.audit:AuditReport",
    "issue-fallback": "tw_gates.schemas.issue_fallback:IssueFallback",
    "audit-exceptions": "tw_gates.schemas.exceptions:AuditExceptions",
    "perf-capture": "tw_gates.schemas.baseline:PerfCapture",
    "consumer-registry": "tw_gates.schemas.registry:ConsumerRegistry",
    "adversarial-corpus": "tw_gates.schemas.corpus:CorpusFile",
    "adversarial-manifest": "tw_gates.schemas.corpus:CorpusManifest",
    "adversarial-report": "tw_gates.schemas.corpus:AdversarialReport",
    "phase-artifact": "tw_gates.schemas.phase:PhaseArtifact",
    "evidence-block": "tw_gates.schemas.evidence:EvidenceBlock",
    "renderer-patterns": "tw_gates.self_audit.self_audit:PatternCatalog",
    "canary-metrics": "tw_gates.schemas.canary:CanaryMetrics",
    "canary-baseline": "tw_gates.schemas.canary:CanaryBaseline",
    "canary-thresholds": "tw_gates.schemas.canary:CanaryThresholds",
    "canary-report": "tw_gates.schemas.canary:CanaryReport",
}


def load(name: str):

    target = REGISTRY.get(name)
    if target is None:
        raise UsageError(f"unknown schema {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def first_duplicate(keys) -> str | None:
    """The first key met twice, for the "listed twice" validators of the
    contracts (registry consumers, corpus cases, catalog patterns)."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None
