"""SARIF 2.1.0 output, so the hits show up in GitHub code scanning."""

from __future__ import annotations

from urllib.parse import quote

from tw_gates import __version__
from tw_gates.self_audit.catalog import PatternCatalog, RendererPattern
from tw_gates.self_audit.hits import FoundHit

_SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub code scanning reads `security-severity` (0-10) to rank alerts.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


HELP_URI = "https://github.com/org/tw-gates/blob/main/docs/self-audit.md"
_PROBLEM_SEVERITY = {"critical": "error", "high": "error", "medium": "warning", "low": "recommendation"}
_ADVICE = (
    "Parsed Markdown and metadata from the Token Warehouse must never reach this renderer unescaped; "
    "if this code is a deliberate renderer, register its path with the Token Warehouse team."
)


def _help(pattern: RendererPattern) -> dict[str, str]:
    """The rule's help, as text and Markdown (code scanning shows the latter)."""
    todo = pattern.help or ""
    text = " ".join(part for part in (pattern.description, todo, _ADVICE) if part)
    markdown = f"**{pattern.id}** ({pattern.severity}, precision {pattern.precision})\n\n{pattern.description}\n\n"
    if todo:
        markdown += f"**Fix:** {todo}\n\n"
    return {"text": text, "markdown": markdown + _ADVICE}


def build_sarif(catalog: PatternCatalog, hits: list[FoundHit], *, repo: str, commit: str, branch: str) -> dict:
    """SARIF 2.1.0 with one rule per catalog pattern and one result per hit."""
    rules = []
    index_of: dict[str, int] = {}
    for index, pattern in enumerate(catalog.patterns):
        index_of[pattern.id] = index
        rules.append(
            {
                "id": pattern.id,
                "name": "".join(part.capitalize() for part in pattern.id.split("-")),
                "shortDescription": {"text": f"Renderer pattern {pattern.id}"},
                "fullDescription": {"text": pattern.description},
                "help": _help(pattern),
                "helpUri": HELP_URI,
                "defaultConfiguration": {"level": _SARIF_LEVEL[pattern.severity]},
                "properties": {
                    "tags": ["security", "external/cwe/cwe-79", "tw-gates", *pattern.languages],
                    "security-severity": _SECURITY_SEVERITY[pattern.severity],
                    "precision": pattern.precision,
                    "problem.severity": _PROBLEM_SEVERITY[pattern.severity],
                },
            }
        )
    results = [
        {
            "ruleId": hit.pattern,
            "ruleIndex": index_of[hit.pattern],
            "level": "note" if hit.argument else _SARIF_LEVEL[hit.severity],
            "message": {
                "text": f"{hit.severity} renderer pattern {hit.pattern}: {catalog.by_id[hit.pattern].description}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": quote(hit.path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": hit.line},
                    }
                }
            ],
            "partialFingerprints": {"twGatesHit/v1": hit.fingerprint},
            "properties": {
                "context": hit.context,
                "scanner": hit.scanner,
                **({"argument": hit.argument} if hit.argument else {}),
            },
        }
        for hit in hits
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tw-gates self-audit",
                        "semanticVersion": __version__,
                        "informationUri": "https://github.com/org/tw-gates",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": "tw-gates/self-audit/"},
                "versionControlProvenance": [
                    {
                        "repositoryUri": f"https://github.com/{repo}",
                        "revisionId": commit,
                        "branch": branch,
                    }
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
