"""G1..G5 in the gate chain (`tw-gates gates`, the umbrella action): settings from
the environment, chain order, and the first failing gate skipping the rest."""

from __future__ import annotations

import re

from tests.unit.test_behavioral import junit, suite_cases, write
from tests.unit.test_verify_nets import GOOD, make_repo
from tw_gates.chain import run as chain


def test_g1_to_g5_are_in_chain_order_with_their_aliases():
    names = [g.name for g in chain.select("all")]
    gates = ["verify-nets", "behavioral", "audit", "hmac-policy", "telemetry-check"]
    assert [n for n in names if n in gates] == gates
    assert [g.name for g in chain.select("G5,g1, G3")] == ["verify-nets", "audit", "telemetry-check"]


def test_static_gates_pass_on_a_configured_repository(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-promtool"))
    repo = make_repo(tmp_path / "repo", GOOD)
    code, out, _ = cli("gates", "--only", "g1,g4,g5", env={"TW_REPO_DIR": str(repo)})
    assert code == 0, out
    # Each gate prints what its own command prints, then the chain's line for it.
    assert "\nVERIFIED S1: " in "\n" + out and "\nENFORCED .github/workflows/ingest.yml" in "\n" + out
    summary = [
        line.split()[:2]
        for line in out.splitlines()
        if re.match(r"(verify-nets|hmac-policy|telemetry-check) +(PASS|FAIL|SKIPPED)", line)
    ]
    assert summary == [["verify-nets", "PASS"], ["hmac-policy", "PASS"], ["telemetry-check", "PASS"]]


def test_failing_g1_skips_the_later_gates(tmp_path, cli):
    files = dict(GOOD)
    del files["prometheus/rules/audit_rules.yml"]
    repo = make_repo(tmp_path / "repo", files)
    report = write(tmp_path / "j.xml", junit(suite_cases()))
    code, out, _ = cli("gates", "--only", "g1,g2,g4", env={"TW_REPO_DIR": str(repo), "TW_JUNIT": str(report)})
    assert code == 2
    assert "verify-nets      FAIL (exit 2)  4/5 safety nets verified; missing: C1" in out
    assert "behavioral       SKIPPED        an earlier gate failed" in out
    assert "hmac-policy      SKIPPED        an earlier gate failed" in out


def test_g2_reads_its_junit_from_the_environment(tmp_path, cli, monkeypatch):
    code, out, _ = cli("gates", "--only", "g2", env={"TW_JUNIT": str(write(tmp_path / "j.xml", junit(suite_cases())))})
    assert code == 0 and "behavioral       PASS           G2: 14/14 passed" in out
    monkeypatch.delenv("TW_JUNIT")
    code, out, _ = cli("gates", "--only", "g2")
    assert code == 1 and "no JUnit XML given: pass --junit FILE (or set TW_JUNIT)" in out
