"""G3's checks: the result type, and the two P0 checks (required status
checks of each consumer, exit 5; a signed performance baseline, exit 6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from github import GithubException
from requests import RequestException

from tw_gates.chain.audit_settings import AuditSettings, Progress
from tw_gates.core.errors import ExitCode, TwGatesError
from tw_gates.core.github_client import GitHubClient, client_from_settings, describe_github_error
from tw_gates.core.settings import load_settings
from tw_gates.parser.baseline import (
    BaselineError,
    Comparability,
    Thresholds,
    compare,
    parse_capture,
    read_capture,
    verify_capture,
)
from tw_gates.schemas.audit import AuditReport, CheckResult

# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    status: str  # pass | fail | warn | skip
    detail: str
    exit_code: ExitCode = ExitCode.OK

    def result(self) -> CheckResult:
        return CheckResult(status=self.status, detail=self.detail)


@dataclass
class AuditOutcome:
    report: AuditReport
    checks: list[Check]
    report_path: Path
    expired_exceptions: list[tuple[int, str]] = field(default_factory=list)  # (line, text)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode(self.report.exit_code)

    @property
    def summary(self) -> str:
        failed = [c for c in self.checks if c.status == "fail"]
        if not failed:
            return f"green light: {len(self.checks)} check(s) passed or skipped"
        first = next(c for c in failed if c.exit_code == self.exit_code)
        more = f" (+{len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
        return f"{first.name}: {first.detail}{more}"


_EXIT_PRIORITY = (ExitCode.P0_PROTECTION, ExitCode.P0_BASELINE, ExitCode.ERROR, ExitCode.REJECTED)


def overall_exit(checks: list[Check]) -> ExitCode:
    codes = {c.exit_code for c in checks if c.status == "fail"}
    return next((code for code in _EXIT_PRIORITY if code in codes), ExitCode.OK)


# --------------------------------------------------------------------------- P0: required checks


def _required_contexts_from_rules(client: GitHubClient, repo: str, branch: str) -> set[str]:
    found: set[str] = set()
    page = 1
    while True:
        rules = client.request_json(
            "GET", f"/repos/{repo}/rules/branches/{quote(branch, safe='')}", params={"per_page": 100, "page": page}
        )
        if not isinstance(rules, list):
            break
        for rule in rules:
            if isinstance(rule, dict) and rule.get("type") == "required_status_checks":
                for check in (rule.get("parameters") or {}).get("required_status_checks") or []:
                    if isinstance(check, dict) and check.get("context"):
                        found.add(str(check["context"]))
        if len(rules) < 100:
            break
        page += 1
    return found


def _required_contexts_from_protection(client: GitHubClient, repo: str, branch: str) -> tuple[set[str], str | None]:
    """(contexts, why unknown or None) of the classic branch protection.

    ``GET .../protection/required_status_checks`` answers 404 both for "not protected"
    and for a caller who may not read protection (GitHub hides it from non-admins), and
    403 in some setups: either is "unknown", never "not protected". The documented
    fallback is the branch itself, whose ``protection`` summary every reader sees."""
    try:
        data = client.request_json(
            "GET", f"/repos/{repo}/branches/{quote(branch, safe='')}/protection/required_status_checks"
        )
    except GithubException as exc:
        if exc.status in (403, 404):
            return _contexts_from_branch(client, repo, branch)
        raise
    return _contexts_of(data), None


def _contexts_of(status: object) -> set[str]:
    """The required contexts of a status-check policy (``contexts`` and ``checks``)."""
    if not isinstance(status, dict):
        return set()
    contexts = {str(c) for c in status.get("contexts") or []}
    contexts |= {str(c["context"]) for c in status.get("checks") or [] if isinstance(c, dict) and c.get("context")}
    return contexts


def _contexts_from_branch(client: GitHubClient, repo: str, branch: str) -> tuple[set[str], str | None]:
    """The branch resource summarises its protection for every reader; when it does
    not say (no summary, or the branch cannot be read), the classic protection stays
    unknown and the caller says so."""
    unknown = "classic branch protection not readable with this token (needs administration: read)"
    try:
        data = client.request_json("GET", f"/repos/{repo}/branches/{quote(branch, safe='')}")
    except GithubException as exc:
        if exc.status == 404:
            return set(), f"{unknown}; the branch {branch!r} was not found"
        raise
    if not isinstance(data, dict):
        return set(), unknown
    protection = data.get("protection")
    status = protection.get("required_status_checks") if isinstance(protection, dict) else None
    if isinstance(status, dict) and ("contexts" in status or "checks" in status):
        return _contexts_of(status), None
    if data.get("protected") is False:
        return set(), None
    return set(), unknown


def _check_consumer(client: GitHubClient, consumer: Any) -> Check:
    """One consumer's required checks; GitHub's errors other than 401/403/404 propagate."""
    name = f"required_checks {consumer.repo}"
    try:
        branch = consumer.default_branch or str(client.request_json("GET", f"/repos/{consumer.repo}")["default_branch"])
        ruleset = _required_contexts_from_rules(client, consumer.repo, branch)
        classic, unreadable = _required_contexts_from_protection(client, consumer.repo, branch)
    except GithubException as exc:
        if exc.status not in (401, 403, 404):
            raise
        return Check(
            name,
            "fail",
            f"cannot read {consumer.repo}: {describe_github_error(exc)} (the token cannot see it, or is not valid)",
            ExitCode.P0_PROTECTION,
        )
    required = list(dict.fromkeys(consumer.required_checks))
    missing = [c for c in required if c not in ruleset and c not in classic]
    sources = []
    if ruleset:
        sources.append(f"rulesets: {', '.join(sorted(ruleset))}")
    if classic:
        sources.append(f"branch protection: {', '.join(sorted(classic))}")
    seen = "; ".join(sources) or "none required"
    if not missing:
        return Check(name, "pass", f"{consumer.repo}@{branch} requires {', '.join(required)} ({seen})")
    detail = f"{consumer.repo}@{branch} does not require {', '.join(missing)} (required now: {seen})"
    if unreadable:
        detail += f"; {unreadable}"
    return Check(name, "fail", detail, ExitCode.P0_PROTECTION)


def _no_token(consumers: list[Any]) -> Check:
    names = ", ".join(c.repo for c in consumers)
    return Check(
        "p0_required_checks",
        "fail",
        (
            f"GITHUB_TOKEN is not set: the required status checks of {names} cannot be confirmed "
            "(fail closed); set GITHUB_TOKEN to a token that can read those repositories"
        ),
        ExitCode.P0_PROTECTION,
    )


def check_required_checks(settings: AuditSettings, registry: Any, *, progress: Progress) -> list[Check]:
    consumers = [c for c in registry.consumers if c.required_checks]
    if not consumers:
        return [Check("p0_required_checks", "skip", "no consumer in the registry lists required_checks")]
    if settings.github_token is None:
        return [_no_token(consumers)]
    client = client_from_settings(settings)
    checks: list[Check] = []
    try:
        for index, consumer in enumerate(consumers, 1):
            progress(f"required checks {index}/{len(consumers)}: {consumer.repo}")
            try:
                checks.append(_check_consumer(client, consumer))
            except GithubException as exc:
                detail = f"GitHub failed: {describe_github_error(exc)}; no decision"
                checks.append(Check(f"required_checks {consumer.repo}", "fail", detail, ExitCode.ERROR))
                break
            except (RequestException, TwGatesError) as exc:  # unreachable, or the deadline passed
                detail = f"{describe_github_error(exc)}; no decision"
                checks.append(Check(f"required_checks {consumer.repo}", "fail", detail, ExitCode.ERROR))
                break
    finally:
        client.publish_metrics()
        client.close()
    passed = sum(1 for c in checks if c.status == "pass")
    missing = any(c.exit_code == ExitCode.P0_PROTECTION for c in checks)
    undecided = any(c.exit_code == ExitCode.ERROR for c in checks)
    detail = f"{passed}/{len(consumers)} consumer(s) require their status checks"
    if undecided:
        detail += f"; GitHub failed, {len(consumers) - len(checks) + 1} consumer(s) undecided"
    code = ExitCode.P0_PROTECTION if missing else ExitCode.ERROR if undecided else ExitCode.OK
    summary = Check("p0_required_checks", "fail" if code else "pass", detail, code)
    return [summary, *checks]


# --------------------------------------------------------------------------- P0: baseline, performance


def check_baseline(settings: AuditSettings, thresholds=None) -> tuple[list[Check], object | None]:
    """P0 baseline (present, signed) and the current capture against it, with
    ``thresholds`` (a baseline.Thresholds; default: TW_PERF_* or the defaults)."""

    try:
        baseline, kid = verify_capture(settings.baseline, settings)
    except BaselineError as exc:
        return [
            Check(
                "p0_baseline",
                "fail",
                f"{exc} (capture one with `tw-gates baseline capture`, then `tw-gates baseline sign`)",
                ExitCode.P0_BASELINE,
            ),
            Check("performance", "skip", "no valid baseline to compare with"),
        ], None
    checks = [
        Check(
            "p0_baseline",
            "pass",
            (
                f"{settings.baseline} signed by key {kid!r}: {baseline.target} on {baseline.corpus}, "
                f"p95 {baseline.latency.p95_ms:g} ms, peak RSS {baseline.peak_rss_mib:g} MiB, "
                f"captured {baseline.captured_at:%Y-%m-%d}"
            ),
        )
    ]
    if settings.current is None:
        checks.append(Check("performance", "skip", "no current capture given (--current): nothing compared"))
        return checks, baseline
    try:
        current = parse_capture(
            read_capture(settings.current, what="current capture"), settings.current, what="current capture"
        )
        results = compare(baseline, current, thresholds or load_settings(Thresholds))
    except (BaselineError, Comparability) as exc:
        checks.append(Check("performance", "fail", str(exc), ExitCode.ERROR))
        return checks, baseline
    breaches = [r for r in results if not r.ok]
    detail = "; ".join(r.text for r in (breaches or results))
    checks.append(
        Check("performance", "fail" if breaches else "pass", detail, ExitCode.REJECTED if breaches else ExitCode.OK)
    )
    return checks, baseline
