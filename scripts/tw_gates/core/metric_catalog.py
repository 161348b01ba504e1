"""C1: every metric tw-gates writes, declared once.

A gate records a metric by name only (``metrics.current().counter(name)``);
its type, help text and labels come from here, so two modules can never
declare the same series differently, and G5 (telemetry-check) takes the
metrics an alert must read from this same list.

Two name families: ``tw_gates_*`` for what the gates report about
themselves, and the ``audit_*`` / ``github_api_quota_remaining`` series that
the alert rules in ``prometheus/rules/audit_rules.yml`` are written against
(stable names: dashboards and alerts outside this repository read them too).
This module is plain data: importing it costs nothing."""

from __future__ import annotations

# No dataclass and no typing at run time: every command imports this module
# (to record its run), and those two bring inspect and typing (start-up).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["counter", "gauge"]


class MetricSpec:
    __slots__ = ("help", "kind", "labels", "name")

    def __init__(self, name: str, kind: Kind, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return (self.name, self.kind, self.help, self.labels)

    def __repr__(self) -> str:
        return f"MetricSpec({self.name!r}, {self.kind!r}, {self.help!r}, {self.labels!r})"


_SPECS = (
    # every command (the CLI records these)
    MetricSpec(
        "tw_gates_command_runs_total", "counter", "tw-gates command runs by exit code", ("command", "exit_code")
    ),
    MetricSpec("tw_gates_command_last_run_timestamp_seconds", "gauge", "When the command last finished", ("command",)),
    MetricSpec("tw_gates_command_duration_seconds", "gauge", "How long the last run of the command took", ("command",)),
    # the GitHub client
    MetricSpec("tw_gates_github_api_calls_total", "counter", "GitHub API requests made, by endpoint", ("endpoint",)),
    MetricSpec(
        "github_api_quota_remaining",
        "gauge",
        "Last seen X-RateLimit-Remaining of the core quota",
    ),
    # S1: collect and ingest
    MetricSpec("tw_gates_collect_consumers_total", "counter", "Consumers collected, by outcome", ("result",)),
    MetricSpec(
        "tw_gates_collect_conditional_requests_total",
        "counter",
        "Conditional GETs of the collector: 304 answers cost no API quota",
        ("result",),
    ),
    MetricSpec(
        "tw_gates_ingest_artifacts_total",
        "counter",
        "Consumer artifacts judged by the ingest gate",
        ("result", "reason"),
    ),
    MetricSpec(
        "tw_gates_ingest_verified_total",
        "counter",
        "Accepted artifacts by the key id that verified them (rotation: when an old kid stays at zero, "
        "it can be retired)",
        ("kid",),
    ),
    MetricSpec("tw_gates_ingest_last_run_rejected", "gauge", "Artifacts rejected by the last ingest run"),
    MetricSpec("tw_gates_ingest_last_run_accepted", "gauge", "Artifacts accepted by the last ingest run"),
    MetricSpec("tw_gates_self_audit_hits", "gauge", "Renderer pattern hits in the last self-audit", ("severity",)),
    # S2 / R1: file-issues
    MetricSpec(
        "audit_issue_create_failures_total", "counter", "Issues file-issues could not create or update", ("reason",)
    ),
    MetricSpec("audit_digest_created_total", "counter", "Digest issues created by file-issues"),
    MetricSpec(
        "audit_fp_marked_total",
        "counter",
        "Findings people marked false positive in tw-gates issues",
    ),
    MetricSpec("audit_findings_filed_total", "counter", "Findings added to tw-gates issues for the first time"),
    MetricSpec(
        "audit_unregistered_repos_total",
        "counter",
        "Repositories with unregistered renderer findings, summed over file-issues runs",
    ),
    # the gate chain
    MetricSpec("tw_gates_safety_nets_verified", "gauge", "Safety nets verified by the last verify-nets run"),
    MetricSpec("tw_gates_safety_net_verified", "gauge", "1 when the safety net was verified in the last run", ("net",)),
    MetricSpec("tw_gates_behavioral_tests_passed", "gauge", "Behavioral tests passed in the last check"),
    MetricSpec("tw_gates_behavioral_tests_expected", "gauge", "Behavioral tests expected to pass"),
    MetricSpec("tw_gates_audit_check_failed", "gauge", "1 when the audit check failed in the last run", ("check",)),
    MetricSpec(
        "tw_gates_audit_unregistered_hits", "gauge", "Unregistered renderer hits in the last audit", ("severity",)
    ),
    # phases
    MetricSpec(
        "tw_gates_phase_unlock_checks_total", "counter", "Phase unlock checks by phase and verdict", ("phase", "result")
    ),
    # the parser
    MetricSpec(
        "tw_gates_adversarial_cases", "gauge", "Adversarial cases run in the last run, by category", ("category",)
    ),
    MetricSpec(
        "tw_gates_adversarial_violating_cases",
        "gauge",
        "Cases of the last adversarial run with a violation, by category and whom it is about",
        ("category", "counts_as"),
    ),
    # the canary
    MetricSpec("tw_gates_canary_decision", "gauge", "1 for the canary's current decision", ("canary", "decision")),
    MetricSpec("tw_gates_canary_coverage_ratio", "gauge", "Clean intervals / intervals in the window", ("canary",)),
    MetricSpec("tw_gates_canary_failed_checks", "gauge", "Failed checks in the window", ("canary",)),
    MetricSpec("tw_gates_canary_time_left_seconds", "gauge", "Time left before the window is complete", ("canary",)),
    MetricSpec(
        "tw_gates_canary_prometheus_queries_total",
        "counter",
        "Prometheus range queries sent by the canary",
        ("canary",),
    ),
)

CATALOG: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}

# The series some alert in the rules file must read (G1's C1 check, G5's coverage check).
ALERTED_METRICS: tuple[str, ...] = (
    "audit_issue_create_failures_total",  # S2: findings went to the fallback artifact
    "audit_digest_created_total",  # R1: digest instead of per-repository issues
    "github_api_quota_remaining",  # R1: the low-quota switch to digest
    "audit_unregistered_repos_total",  # the audit's findings
    "audit_fp_marked_total",  # findings the security team marked false positive
    "tw_gates_command_runs_total",  # every command, by exit code
)
