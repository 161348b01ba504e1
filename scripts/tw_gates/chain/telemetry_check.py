"""G5: the telemetry infrastructure is in place.

* ``prometheus/rules/audit_rules.yml`` is present and valid: parsed as YAML
  with the shape Prometheus expects (groups of alerting/recording rules), and
  accepted by ``promtool check rules`` when promtool is on the PATH;
* its alerts cover the metrics the safety nets emit: each required metric is
  read by at least one alert expression, directly or through a recording rule;
* the ingest workflow (``.github/workflows/ingest.yml``) is present and runs
  the ingest gate.

The rule analysis is shared with G1's C1 check. PromQL is tokenised (strings,
label matchers, label lists and range selectors removed, function calls and
keywords skipped) rather than searched as text, so a metric named only in a
label value or an annotation does not count."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tw_gates.chain.invocations import invocations
from tw_gates.chain.workflow_model import RepoConfig
from tw_gates.core import proc
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.metric_catalog import ALERTED_METRICS
from tw_gates.core.settings import EnvSettings, env
from tw_gates.core.yaml_lines import LineDict, YamlError, load_yaml

RULES_FILE = "prometheus/rules/audit_rules.yml"
INGEST_WORKFLOW = ".github/workflows/ingest.yml"

# The series some alert must read (the metrics catalogue's list). A family name
# covers its _total/_bucket/_count/_sum series.
REQUIRED_ALERT_METRICS: tuple[str, ...] = ALERTED_METRICS

_SERIES_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")
_PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """Metric (or recording rule) names read by a PromQL expression."""
    text = _STRING.sub(" ", expr)
    text = _LABEL_LIST.sub(" ", text)
    previous = None
    while previous != text:  # nested selectors inside subqueries
        previous = text
        text = _BRACES.sub(" ", text)
        text = _BRACKETS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        # The lookbehind skips the unit of a duration (5m) and an exponent (1e3).
        if call or name.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


class Alert(BaseModel):
    name: str
    expr: str
    line: int
    group: str


class RulesAnalysis(BaseModel):
    """What the rules file holds and what it leaves uncovered."""

    path: str
    present: bool = False
    problems: list[str] = Field(default_factory=list)
    groups: int = 0
    alerts: list[Alert] = Field(default_factory=list)
    records: dict[str, str] = Field(default_factory=dict)
    covered: dict[str, list[str]] = Field(default_factory=dict)  # metric -> alerts reading it
    missing: list[str] = Field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.present and not self.problems

    @property
    def complete(self) -> bool:
        return self.valid and bool(self.alerts) and not self.missing


def analyse_rules(
    repo_dir: Path, required: tuple[str, ...] | list[str] = REQUIRED_ALERT_METRICS, rules_file: str = RULES_FILE
) -> RulesAnalysis:
    analysis = RulesAnalysis(path=rules_file)
    groups = _rule_groups(repo_dir, rules_file, analysis)
    if groups is None:
        analysis.missing = list(required)
        return analysis
    analysis.groups = len(groups)
    for g_index, group in enumerate(groups):
        _read_group(group, g_index, rules_file, analysis)
    _check_coverage(required, analysis)
    return analysis


def _rule_groups(repo_dir: Path, rules_file: str, analysis: RulesAnalysis) -> list | None:
    """The file's ``groups:`` list, or None with the problem recorded."""
    path = repo_dir / rules_file
    if not path.is_file():
        analysis.problems.append(f"{rules_file} not found")
        return None
    analysis.present = True
    try:
        data = load_yaml(path)
    except YamlError as exc:
        analysis.problems.append(str(exc).replace(str(repo_dir) + "/", ""))
        return None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups:
        analysis.problems.append(f"{rules_file}: no `groups:` list (Prometheus rule file format)")
        return None
    return groups


def _read_group(group: object, g_index: int, rules_file: str, analysis: RulesAnalysis) -> None:
    if not isinstance(group, LineDict) or not isinstance(group.get("rules"), list):
        analysis.problems.append(f"{rules_file}: group {g_index + 1} has no `rules:` list")
        return
    group_name = str(group.get("name") or f"group {g_index + 1}")
    for rule in group["rules"]:
        if not isinstance(rule, LineDict):
            analysis.problems.append(f"{rules_file}: group {group_name!r} holds a rule that is not a mapping")
            continue
        expr = rule.get("expr")
        if not isinstance(expr, (str, int, float)) or not str(expr).strip():
            analysis.problems.append(f"{rules_file}:{rule.line}: rule without `expr`")
        elif rule.get("alert"):
            analysis.alerts.append(Alert(name=str(rule["alert"]), expr=str(expr), line=rule.line, group=group_name))
        elif rule.get("record"):
            analysis.records[str(rule["record"])] = str(expr)
        else:
            analysis.problems.append(f"{rules_file}:{rule.line}: rule is neither `alert` nor `record`")


def _check_coverage(required: tuple[str, ...] | list[str], analysis: RulesAnalysis) -> None:
    """Each required metric must be read by some alert (directly or through recording rules)."""
    read_by_alerts: dict[str, set[str]] = {}
    for alert in analysis.alerts:
        for metric in _expand_records(promql_metric_names(alert.expr), analysis.records):
            read_by_alerts.setdefault(metric, set()).add(alert.name)
    for metric in required:
        base = metric[: -len("_total")] if metric.endswith("_total") else metric
        readers: set[str] = set()
        for suffix in _SERIES_SUFFIXES:
            readers |= read_by_alerts.get(base + suffix, set())
        if readers:
            analysis.covered[metric] = sorted(readers)
        else:
            analysis.missing.append(metric)


def _expand_records(names: set[str], records: dict[str, str], depth: int = 0) -> set[str]:
    """Names plus everything the recording rules among them read."""
    expanded = set(names)
    if depth > 10:
        return expanded
    for name in names & records.keys():
        expanded |= _expand_records(promql_metric_names(records[name]), records, depth + 1)
    return expanded


# --------------------------------------------------------------------------- the gate


class TelemetryCheckSettings(EnvSettings):
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    rules_file: str = Field(RULES_FILE, validation_alias=env("TW_RULES_FILE", "rules_file"))
    # Comma/space separated; replaces the built-in list when given.
    required_metrics: str | None = Field(None, validation_alias=env("TW_REQUIRED_METRICS", "required_metrics"))
    promtool: str | None = Field(None, validation_alias=env("TW_PROMTOOL", "promtool"))

    def metrics(self) -> tuple[str, ...]:
        if not self.required_metrics:
            return REQUIRED_ALERT_METRICS
        return tuple(m for m in re.split(r"[\s,]+", self.required_metrics) if m)


class Finding(BaseModel):
    check: str
    status: Literal["ok", "fail", "skip"]
    detail: str
    file: str | None = None
    line: int | None = None

    @property
    def text(self) -> str:
        return f"{self.status.upper()} {self.check}: {self.detail}"


class TelemetryCheckResult(BaseModel):
    findings: list[Finding]

    @property
    def passed(self) -> bool:
        return all(f.status != "fail" for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.passed else ExitCode.REJECTED

    @property
    def summary(self) -> str:
        failed = [f.check for f in self.findings if f.status == "fail"]
        return "telemetry infrastructure in place" if not failed else f"failed: {', '.join(failed)}"


def telemetry_check(settings: TelemetryCheckSettings) -> TelemetryCheckResult:

    root = settings.repo_dir
    if not root.is_dir():
        raise UsageError(f"repository folder not found: {root}")
    findings: list[Finding] = []
    analysis = analyse_rules(root, settings.metrics(), settings.rules_file)
    rules = settings.rules_file
    if analysis.valid:
        findings.append(
            Finding(
                check="rules",
                status="ok",
                file=rules,
                detail=(
                    f"{rules} parsed: {analysis.groups} group(s), {len(analysis.alerts)} alert(s), "
                    f"{len(analysis.records)} recording rule(s)"
                ),
            )
        )
    else:
        findings.append(Finding(check="rules", status="fail", file=rules, detail="; ".join(analysis.problems)))
    if analysis.valid:
        # Only a file our own reading accepted goes to promtool: a link, a FIFO, a
        # file over the size limit or an alias bomb is refused above, never handed on
        # (promtool follows links, reads any size, and quotes what it could not parse).
        findings.append(_promtool(root, rules, settings.promtool))
    if analysis.valid:
        if analysis.missing:
            findings.append(
                Finding(
                    check="coverage",
                    status="fail",
                    file=rules,
                    detail=(f"no alert reads {', '.join(analysis.missing)} (add an alert whose expr uses it)"),
                )
            )
        else:
            covered = ", ".join(f"{m} ({', '.join(a)})" for m, a in analysis.covered.items())
            findings.append(Finding(check="coverage", status="ok", file=rules, detail=f"alerts cover {covered}"))
    findings.append(_ingest_workflow(root))
    return TelemetryCheckResult(findings=findings)


def _promtool(root: Path, rules: str, configured: str | None) -> Finding:

    binary = configured or shutil.which("promtool")
    if not binary:
        return Finding(
            check="promtool",
            status="skip",
            file=rules,
            detail="promtool not on PATH: `promtool check rules` not run (install the prometheus package)",
        )
    result = proc.run([binary, "check", "rules", rules], timeout=60, cwd=root)
    output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    if result.ok:
        return Finding(check="promtool", status="ok", file=rules, detail=f"`promtool check rules {rules}` passed")
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), result.describe())
    return Finding(check="promtool", status="fail", file=rules, detail=f"`promtool check rules {rules}` failed: {last}")


def _ingest_workflow(root: Path) -> Finding:

    if not (root / INGEST_WORKFLOW).is_file():
        return Finding(
            check="ingest-workflow", status="fail", file=INGEST_WORKFLOW, detail=f"{INGEST_WORKFLOW} not found"
        )
    repo = RepoConfig(root)
    workflow = repo.workflow(Path(INGEST_WORKFLOW).name)
    if workflow is None:
        problem = next((e for e in repo.errors if Path(INGEST_WORKFLOW).name in e), "cannot be parsed")
        return Finding(check="ingest-workflow", status="fail", file=INGEST_WORKFLOW, detail=problem)
    runs = [i for i in invocations(repo) if i.step.workflow is workflow and i.command == "ingest"]
    if not runs:
        return Finding(
            check="ingest-workflow",
            status="fail",
            file=INGEST_WORKFLOW,
            line=workflow.data.line,
            detail=f"{INGEST_WORKFLOW} does not run the ingest gate (`tw-gates ingest` or actions/ingest)",
        )
    first = runs[0]
    return Finding(
        check="ingest-workflow",
        status="ok",
        file=INGEST_WORKFLOW,
        detail=f"{INGEST_WORKFLOW} runs the ingest gate in job {first.step.job.id!r} {first.step.label}",
    )
