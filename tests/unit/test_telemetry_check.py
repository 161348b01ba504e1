"""G5 telemetry-check: rules valid (promtool when present), covering the metrics; ingest workflow present."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool
from tests.unit.test_verify_nets import INGEST_ACTION, INGEST_YML, RULES, make_repo
from tw_gates.chain.telemetry_check import promql_metric_names


def repo_with(tmp_path, **files):
    base = {
        ".github/workflows/ingest.yml": INGEST_YML,
        "actions/ingest/action.yml": INGEST_ACTION,
        "prometheus/rules/audit_rules.yml": RULES,
    }
    base.update(files)
    return make_repo(tmp_path / "repo", base)


def test_complete_setup_passes_with_promtool(tmp_path, cli):
    promtool = require_tool("promtool")
    code, out, _ = cli("telemetry-check", "--repo-dir", repo_with(tmp_path), "--promtool", promtool)
    assert code == 0, out
    assert "OK rules: prometheus/rules/audit_rules.yml parsed: 1 group(s), 5 alert(s), 0 recording rule(s)" in out
    assert "OK promtool: `promtool check rules prometheus/rules/audit_rules.yml` passed" in out
    assert "OK coverage: alerts cover audit_issue_create_failures_total (TwGatesFallback), " in out
    assert "audit_fp_marked_total (TwGatesFindings), tw_gates_command_runs_total (TwGatesCommandFailing)" in out
    assert (
        "OK ingest-workflow: .github/workflows/ingest.yml runs the ingest gate in job 'ingest' step 'Ingest gate'"
        in out
    )


def test_promtool_rejects_what_yaml_accepts(tmp_path, cli):
    promtool = require_tool("promtool")
    bad = RULES.replace("for: 5m", "for: five minutes")
    code, out, _ = cli(
        "telemetry-check",
        "--repo-dir",
        repo_with(tmp_path, **{"prometheus/rules/audit_rules.yml": bad}),
        "--promtool",
        promtool,
    )
    assert code == 2 and "FAIL promtool: `promtool check rules prometheus/rules/audit_rules.yml` failed" in out


def test_without_promtool_the_check_is_skipped_not_failed(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, out, _ = cli("telemetry-check", "--repo-dir", repo_with(tmp_path))
    assert code == 0 and "SKIP promtool: promtool not on PATH" in out


def test_required_metrics_can_be_named(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, out, _ = cli(
        "telemetry-check",
        "--repo-dir",
        repo_with(tmp_path),
        "--require-metric",
        "tw_gates_command_runs",
        "--require-metric",
        "tw_gates_ingest_artifacts_total",
    )
    assert code == 2 and "FAIL coverage: no alert reads tw_gates_ingest_artifacts_total" in out


def test_missing_rules_and_ingest_workflow(tmp_path, cli):
    repo = make_repo(tmp_path / "repo", {"README.md": "x"})
    code, out, err = cli("telemetry-check", "--repo-dir", repo)
    assert code == 2
    assert "FAIL rules: prometheus/rules/audit_rules.yml not found" in out
    assert "FAIL ingest-workflow: .github/workflows/ingest.yml not found" in out
    assert "failed: rules, ingest-workflow" in err


def test_ingest_workflow_that_does_not_ingest(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    workflow = INGEST_YML.replace("        uses: ./actions/ingest\n", "        run: echo nothing\n")
    code, out, _ = cli(
        "telemetry-check", "--repo-dir", repo_with(tmp_path, **{".github/workflows/ingest.yml": workflow})
    )
    assert code == 2 and "does not run the ingest gate" in out


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (rate(a_total{x="b_total"}[5m])) > 0', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(d_bucket[1h]))) * 1e3 > 2", {"d_bucket"}),
        ("a / ignoring(instance) group_left(x) b offset 5m", {"a", "b"}),
        ("max_over_time(c[1h:5m]) and on() vector(1)", {"c"}),
        ("ns:rule:rate5m > 0 unless absent(e)", {"ns:rule:rate5m", "e"}),
    ],
)
def test_promql_names(expr, names):
    assert promql_metric_names(expr) == names
