"""Phase unlock, completion, tag and status on a temporary git repository
(local artifacts; the GitHub lookup is in test_phase_github.py)."""

import json
import subprocess

import pytest

from tw_gates.schemas.phase import PhaseArtifact

KEY = "phase-signing-key-0123456789abcdef"
ALL_GATES = "G1,G2,G3,G4,G5"
JUNIT_CASE = '<testcase classname="tests.behavioral.test_x" name="test_{i}" time="0.5"{body}</testcase>'


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, name, content):
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, "gate.py", "def gate():\n    return 0\n")
    monkeypatch.chdir(path)
    monkeypatch.setenv("TW_PHASE_KEY", KEY)
    monkeypatch.setenv("TW_PHASE_KEY_ID", "k2026")
    (path / "values.yml").write_text('baseline_pass_count: "14/14"\nperformance_delta_median: "+1.2%"\n')
    return path


def complete(cli, phase, *extra):
    return cli("phase", "complete", str(phase), "--gates-passed", ALL_GATES, "--from-file", "values.yml", *extra)


def load(repo, phase):
    return json.loads((repo / f".phase-{phase}.complete.json").read_text())


def write(repo, phase, document):
    (repo / f".phase-{phase}.complete.json").write_text(json.dumps(document))


def test_phase_0_needs_nothing_and_phase_1_needs_phase_0(repo, cli):
    code, out, _ = cli("phase", "verify", "0")
    assert code == 0 and "no prerequisite" in out
    code, _, err = cli("phase", "verify", "1")
    assert code == 2
    assert "Phase 0 not complete. Cannot start Phase 1. Reason: no .phase-0.complete.json in ." in err


def test_complete_writes_a_signed_valid_artifact_that_unlocks_the_next_phase(repo, cli):
    code, out, err = complete(cli, 0)
    assert code == 0, err
    document = load(repo, 0)
    artifact = PhaseArtifact.model_validate(document)
    assert artifact.phase == 0 and artifact.phase_name == "Prerequisites & Setup"
    assert artifact.git_commit == git(repo, "rev-parse", "HEAD")
    assert artifact.baseline_pass_count == "14/14" and artifact.ci_gates_passed == ["G1", "G2", "G3", "G4", "G5"]
    assert artifact.performance_delta_median == "+1.2%"
    assert artifact.safety_nets_count_before == artifact.safety_nets_count_after
    assert document["completion_date"].endswith("Z")
    assert document["signature"]["kid"] == "k2026"
    code, out, err = cli("phase", "verify", "1")
    assert code == 0, err
    assert "Phase 0 complete" in out and "Phase 1 may start" in out


def test_next_phase_carries_safety_nets_and_evidence_and_reports_changes(repo, cli):
    assert complete(cli, 0)[0] == 0
    commit(repo, "ingest.py", "def ingest():\n    return 2\n\n\ndef reject():\n    return 2\n")
    code, _, err = cli(
        "evidence",
        "add",
        "--id",
        "EV-1-ingest",
        "--phase",
        "1",
        "--file",
        "ingest.py",
        "--lines",
        "1-2",
        "--description",
        "ingest rejects",
    )
    assert code == 0, err
    cli(
        "evidence",
        "add",
        "--id",
        "EV-2-other",
        "--phase",
        "2",
        "--file",
        "ingest.py",
        "--lines",
        "5-6",
        "--description",
        "next phase",
    )
    code, out, err = complete(cli, 1, "--name", "Ingest gate", "--report", "report.md")
    assert code == 0, err
    artifact = PhaseArtifact.model_validate(load(repo, 1))
    assert [(e.evidence_id, e.file, e.lines) for e in artifact.evidence_blocks] == [("EV-1-ingest", "ingest.py", "1-2")]
    assert artifact.safety_nets_count_before == load(repo, 0)["safety_nets_count_after"]
    report = (repo / "report.md").read_text()
    for heading in (
        "## Summary",
        "### Code Changes",
        "### Methods Added",
        "### Methods Removed",
        "## Validation Results",
        "### Performance",
        "### CI Gates",
        "### Safety Nets Count",
        "## Evidence Blocks",
        "## Issues Encountered",
        "## Time Tracking",
        "## Deviations from Specification",
        "## Next Steps",
    ):
        assert heading in report
    assert "{{" not in report
    assert "# Phase 1 Completion Report" in report and "Ingest gate" in report
    assert "1 commit since Phase 0" in report and "`ingest.py` (+6 -0)" in report
    assert "- `ingest`\n- `reject`" in report
    assert "`EV-1-ingest`: `ingest.py` lines 1-2" in report and "EV-2-other" not in report
    assert "**Median delta**: +1.2%" in report
    assert "tw-gates phase verify 2" in report


@pytest.mark.parametrize(
    "gates, values, message",
    [
        ("G1,G2,G3,G4", 'baseline_pass_count: "14/14"\n', "CI gates not passed: G5"),
        (ALL_GATES, 'baseline_pass_count: "13/14"\n', "behavioral baseline is 13/14, not whole"),
    ],
)
def test_complete_refuses_without_all_gates_and_a_whole_baseline(repo, cli, gates, values, message):
    (repo / "values.yml").write_text(values)
    code, _, err = cli("phase", "complete", "0", "--gates-passed", gates, "--from-file", "values.yml")
    assert code == 2
    assert f"Phase 0 cannot complete: {message}" in err
    assert not (repo / ".phase-0.complete.json").exists()


def test_complete_refuses_when_the_phase_evidence_no_longer_verifies(repo, cli):
    cli("evidence", "add", "--id", "EV-0", "--phase", "0", "--file", "gate.py", "--lines", "1-2", "--description", "d")
    commit(repo, "gate.py", "def gate():\n    return 1\n")
    code, _, err = complete(cli, 0)
    assert code == 2
    assert "evidence does not verify: EV-0 changed" in err


def _junit(path, failing=0, count=14):
    cases = []
    for i in range(count):
        body = '><failure message="boom">trace</failure>' if i < failing else ">"
        cases.append(JUNIT_CASE.format(i=i, body=body))
    path.write_text(
        f'<?xml version="1.0"?><testsuites><testsuite name="behavioral" time="7.0" tests="{count}">'
        + "".join(cases)
        + "</testsuite></testsuites>"
    )


def test_baseline_comes_from_g2_junit(repo, cli):
    _junit(repo / "junit.xml")
    code, _, err = cli(
        "phase", "complete", "0", "--gates-passed", ALL_GATES, "--junit", "junit.xml", "--report", "r.md"
    )
    assert code == 0, err
    assert load(repo, 0)["baseline_pass_count"] == "14/14"
    assert "**Duration**: 7.0s" in (repo / "r.md").read_text()
    _junit(repo / "junit.xml", failing=1)
    code, _, err = cli("phase", "complete", "0", "--gates-passed", ALL_GATES, "--junit", "junit.xml")
    assert code == 2 and "baseline is 13/14" in err and "failed" in err


def test_complete_needs_the_previous_phase(repo, cli):
    code, _, err = complete(cli, 2)
    assert code == 2
    assert "Phase 1 not complete. Cannot start Phase 2." in err


def test_complete_needs_a_signing_key_and_measurements(repo, cli, monkeypatch):
    code, _, err = cli("phase", "complete", "0", "--gates-passed", ALL_GATES)
    assert code == 1 and "baseline_pass_count unknown" in err
    code, _, err = cli("phase", "complete", "0", "--from-file", "values.yml")
    assert code == 1 and "--gates-passed" in err
    code, _, err = cli("phase", "complete", "0", "--gates-passed", "G1,G9", "--from-file", "values.yml")
    assert code == 1 and "unknown gate 'G9'" in err
    monkeypatch.delenv("TW_PHASE_KEY")
    code, _, err = complete(cli, 0)
    assert code == 1 and "no signing key: set TW_PHASE_KEY" in err


def _tamper(document):
    document["baseline_pass_count"] = "15/15"


def _unsign(document):
    del document["signature"]


def _bad_version(document):
    document["min_schema_version"] = "2.0"


def _missing_key(document):
    del document["ci_gates_passed"]


def _other_kid(document):
    document["signature"]["kid"] = "stranger"


@pytest.mark.parametrize(
    "change, reason",
    [
        (_tamper, "signature check failed: signature does not match (key id 'k2026') (bad_signature)"),
        (_unsign, "signature check failed: no signature (missing_signature)"),
        (_other_kid, "unknown key id 'stranger'"),
        (_bad_version, "min_schema_version is '2.0'; this tw-gates reads schema 1.0"),
        (_missing_key, "missing required keys: ci_gates_passed"),
    ],
)
def test_an_altered_artifact_is_refused_with_the_reason(repo, cli, change, reason):
    assert complete(cli, 0)[0] == 0
    document = load(repo, 0)
    change(document)
    write(repo, 0, document)
    code, _, err = cli("phase", "verify", "1")
    assert code == 2
    assert "Phase 0 not complete. Cannot start Phase 1. Reason: " in err and reason in err


def test_an_artifact_for_another_phase_is_refused(repo, cli):
    assert complete(cli, 0)[0] == 0
    (repo / ".phase-1.complete.json").write_text((repo / ".phase-0.complete.json").read_text())
    code, _, err = cli("phase", "verify", "2")
    assert code == 2
    assert "Phase 1 not complete. Cannot start Phase 2. Reason: the artifact is for phase 0, not phase 1" in err


def test_the_commit_must_be_an_ancestor_of_head(repo, cli):
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "side.py", "x = 1\n")
    assert complete(cli, 0)[0] == 0
    git(repo, "checkout", "-q", "main")
    code, _, err = cli("phase", "verify", "1")
    assert code == 2 and "is not an ancestor of HEAD" in err
    # A commit this clone has never seen (a shallow checkout, or a forged hash re-signed).
    from tw_gates.core.signing import PHASE_UNLOCK, KeyRing

    document = load(repo, 0)
    document["git_commit"] = "0" * 40
    write(repo, 0, KeyRing(signing_key=KEY, signing_kid="k2026", doc_type=PHASE_UNLOCK).sign(document))
    code, _, err = cli("phase", "verify", "1")
    assert code == 2 and "is not in this clone" in err and "fetch-depth: 0" in err


def test_rotated_keys_still_verify_older_artifacts(repo, cli, monkeypatch):
    assert complete(cli, 0)[0] == 0
    monkeypatch.setenv("TW_PHASE_KEY", "the-new-key-after-rotation-0123456789")
    monkeypatch.setenv("TW_PHASE_KEY_ID", "k2027")
    monkeypatch.setenv("TW_PHASE_KEYS", json.dumps({"k2026": KEY}))
    code, out, err = cli("phase", "verify", "1")
    assert code == 0, err
    assert "signed by key k2026" in out


def test_verify_without_any_key_is_a_usage_error(repo, cli, monkeypatch):
    assert complete(cli, 0)[0] == 0
    monkeypatch.delenv("TW_PHASE_KEY")
    code, _, err = cli("phase", "verify", "1")
    assert code == 1 and "TW_PHASE_KEYS" in err


def test_tag_is_created_once_and_never_moved(repo, cli):
    code, out, err = complete(cli, 0, "--tag")
    assert code == 0, err
    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", "phase-0-complete^{commit}") == head
    assert complete(cli, 0, "--tag")[0] == 0  # same commit: nothing to do
    commit(repo, "more.py", "y = 2\n")
    code, _, err = complete(cli, 0, "--tag")
    assert code == 1 and "tag phase-0-complete already exists" in err
    assert git(repo, "rev-parse", "phase-0-complete^{commit}") == head


def test_status_shows_complete_missing_and_invalid(repo, cli):
    assert complete(cli, 0)[0] == 0
    commit(repo, "one.py", "x = 1\n")
    assert complete(cli, 1, "--name", "One")[0] == 0
    code, out, err = cli("phase", "status", "--source", "local")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Phase 0  complete  ") and git(repo, "rev-parse", "HEAD~1") in lines[0]
    assert lines[1].startswith("Phase 1  complete  ") and lines[1].endswith("One")
    assert all(line.startswith(f"Phase {n}  missing") for n, line in zip((2, 3, 4), lines[2:], strict=False))
    document = load(repo, 1)
    document["phase_name"] = "Changed"
    write(repo, 1, document)
    code, out, err = cli("phase", "status", "--json")
    assert code == 2
    states = {s["phase"]: s["state"] for s in json.loads(out)}
    assert states == {0: "complete", 1: "invalid", 2: "missing", 3: "missing", 4: "missing"}
    assert "invalid phase artifact(s): phase 1" in err


def test_bad_phase_numbers_are_usage_errors(repo, cli):
    for bad in ("5", "-1", "x"):
        code, _, err = cli("phase", "verify", bad)
        assert code == 1 and "phase must be" in err


def test_schema_command_knows_the_contracts(cli):
    code, out, _ = cli("schema", "phase-artifact")
    assert code == 0 and "git_commit" in json.loads(out)["properties"]
    code, out, _ = cli("schema", "evidence-block")
    assert code == 0 and "sha256" in json.loads(out)["properties"]


def test_baseline_can_be_g2s_score_from_another_job(repo, cli):
    (repo / "values.yml").write_text("performance_delta_p95: '+2%'\n")
    code, _, err = complete(cli, 0, "--baseline", "14/14", "--report", "r.md")
    assert code == 0, err
    assert load(repo, 0)["baseline_pass_count"] == "14/14"
    assert "score from the --baseline flag" in (repo / "r.md").read_text()
    code, _, err = complete(cli, 0, "--baseline", "all of them")
    assert code == 1 and "not PASSED/EXPECTED" in err
    code, _, err = complete(cli, 0, "--baseline", "12/14")
    assert code == 2 and "baseline is 12/14, not whole" in err


CONSUMER_KEY = "consumer-held-key-0123456789abcdef"


def test_a_phase_unlock_signed_with_a_consumers_key_is_refused(repo, cli, monkeypatch):
    """The attack: any key in TW_HMAC_KEYS (the consumers' ring) verified a phase unlock."""
    from tw_gates.core.signing import KeyRing

    assert complete(cli, 0)[0] == 0
    document = load(repo, 0)
    write(repo, 0, KeyRing(signing_key=CONSUMER_KEY, signing_kid="c1").sign(document))
    monkeypatch.setenv("TW_HMAC_KEYS", json.dumps({"c1": CONSUMER_KEY}))
    code, _, err = cli("phase", "verify", "1")
    assert code == 2
    assert "Reason: signature check failed: the signature names no document type" in err
    assert "(untyped_signature)" in err


@pytest.mark.parametrize(
    "change, recorded",
    [
        ({"ci_gates_passed": [], "baseline_pass_count": "0/14"}, "CI gates not passed: G1, G2, G3, G4, G5"),
        ({"baseline_pass_count": "0/14"}, "baseline_pass_count 0/14 is short of its total"),
        ({"baseline_pass_count": "13/14"}, "baseline_pass_count 13/14 is short of its total"),
        ({"baseline_pass_count": "0/0"}, "baseline_pass_count 0/0 is short of its total"),
        ({"ci_gates_passed": ["G1", "G2", "G4", "G5"]}, "CI gates not passed: G3"),
    ],
)
def test_a_signed_artifact_recording_a_failed_phase_is_refused(repo, cli, change, recorded):
    """The attack: a validly signed artifact of a phase that did not pass still unlocked the next."""
    from tw_gates.core.signing import PHASE_UNLOCK, KeyRing

    assert complete(cli, 0)[0] == 0
    document = {**load(repo, 0), **change}
    write(repo, 0, KeyRing(signing_key=KEY, signing_kid="k2026", doc_type=PHASE_UNLOCK).sign(document))
    code, _, err = cli("phase", "verify", "1")
    assert code == 2
    assert "Reason: the artifact records a phase that did not pass: " in err and recorded in err
