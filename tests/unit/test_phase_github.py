"""Phase artifacts across workflow runs: found through the REST API of the
GitHub emulator (a real HTTP server), downloaded as a zip, and checked."""

import io
import json
import time
import zipfile

import pytest

from tests.unit.test_phase import ALL_GATES, KEY, commit, git, load

TOKEN = "ghs_" + "p" * 36
REPO = "acme/warehouse"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, "gate.py", "def gate():\n    return 0\n")
    monkeypatch.chdir(path)
    monkeypatch.setenv("TW_PHASE_KEY", KEY)
    monkeypatch.setenv("TW_PHASE_KEY_ID", "k2026")
    (path / "values.yml").write_text('baseline_pass_count: "14/14"\n')
    return path


@pytest.fixture
def emu(github_emulator, monkeypatch):
    github_emulator.add_token(TOKEN, kind="actions", repo_permissions={REPO: {"actions": "read"}})
    github_emulator.add_repo(REPO, private=True)
    monkeypatch.setenv("GITHUB_API_URL", github_emulator.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("TW_GITHUB_RETRIES", "0")
    return github_emulator


def _artifact_of_phase_0(repo, cli):
    """Complete phase 0 locally and take the file away, as a finished run would."""
    code, _, err = cli("phase", "complete", "0", "--gates-passed", ALL_GATES, "--from-file", "values.yml")
    assert code == 0, err
    path = repo / ".phase-0.complete.json"
    data = path.read_bytes()
    path.unlink()
    return data


def _publish(
    emu,
    data,
    *,
    conclusion="success",
    name="phase-0-complete",
    member=".phase-0.complete.json",
    created_at=None,
    expired=False,
    path=".github/workflows/phase.yml",
    event="workflow_dispatch",
    head_branch=None,
    head_repository=None,
):
    """What GitHub keeps after a run uploaded the artifact: by default a successful
    workflow_dispatch run of phase.yml on the default branch of this repository."""
    run = emu.add_workflow_run(
        REPO,
        conclusion=conclusion,
        name="phase",
        path=path,
        event=event,
        head_branch=head_branch,
        head_repository=head_repository,
    )
    return emu.add_artifact(REPO, name, files={member: data}, run_id=run, created_at=created_at, expired=expired)


def test_phase_0_artifact_from_a_successful_run_unlocks_phase_1(repo, emu, cli):
    artifact_id = _publish(emu, _artifact_of_phase_0(repo, cli))
    code, out, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 0, err
    assert "Phase 1 may start" in out
    assert f"Actions artifact phase-0-complete (id {artifact_id})" in out
    assert emu.count("GET", r"/actions/artifacts$") == 1
    assert emu.count("GET", rf"/actions/artifacts/{artifact_id}/zip$") == 1


def test_auto_falls_back_to_github_when_there_is_no_local_file(repo, emu, cli):
    _publish(emu, _artifact_of_phase_0(repo, cli))
    code, out, err = cli("phase", "verify", "1")
    assert code == 0, err
    assert "Actions artifact phase-0-complete" in out


def test_newest_artifact_of_a_successful_run_is_the_one_checked(repo, emu, cli):
    good = _artifact_of_phase_0(repo, cli)
    tampered = json.loads(good)
    tampered["safety_nets_count_after"] = 5
    now = time.time()
    _publish(emu, good, created_at=now - 300)
    _publish(emu, json.dumps(tampered).encode(), created_at=now - 100, conclusion="failure")  # not successful: ignored
    _publish(emu, json.dumps(tampered).encode(), created_at=now - 50, expired=True)  # expired: ignored
    code, out, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 0, err
    # A newer successful run's tampered artifact wins the lookup, and is refused.
    _publish(emu, json.dumps(tampered).encode(), created_at=now - 10)
    code, _, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 2
    assert "Phase 0 not complete. Cannot start Phase 1. Reason: signature check failed" in err


def test_no_artifact_from_a_successful_run_refuses(repo, emu, cli):
    _publish(emu, _artifact_of_phase_0(repo, cli), conclusion="failure")
    code, _, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 2
    assert (
        "Phase 0 not complete. Cannot start Phase 1. Reason: no Actions artifact phase-0-complete from a "
        f"successful run of .github/workflows/phase.yml on main in {REPO}: artifact "
    ) in err
    assert "conclusion failure is not success" in err


def test_a_zip_without_the_artifact_file_refuses(repo, emu, cli):
    _publish(emu, _artifact_of_phase_0(repo, cli), member="../elsewhere/phase.json")
    code, _, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 2
    assert "holds 0 files named .phase-0.complete.json" in err


def test_phase_complete_takes_the_previous_artifact_from_github(repo, emu, cli):
    _publish(emu, _artifact_of_phase_0(repo, cli))
    commit(repo, "next.py", "x = 1\n")
    code, out, err = cli(
        "phase", "complete", "1", "--gates-passed", ALL_GATES, "--from-file", "values.yml", "--source", "github"
    )
    assert code == 0, err
    assert load(repo, 1)["phase"] == 1


def test_status_over_github(repo, emu, cli):
    _publish(emu, _artifact_of_phase_0(repo, cli))
    code, out, err = cli("phase", "status", "--source", "github")
    assert code == 0, err
    assert out.splitlines()[0].startswith("Phase 0  complete")
    assert "Phase 1  missing   no Actions artifact phase-1-complete" in out


def test_github_needs_a_token_and_a_repository(repo, cli, monkeypatch):
    code, _, err = cli("phase", "verify", "1", "--source", "github", env={"GITHUB_REPOSITORY": REPO})
    assert code == 1 and "GITHUB_TOKEN" in err
    monkeypatch.delenv("GITHUB_REPOSITORY")
    code, _, err = cli("phase", "verify", "1", "--source", "github", env={"GITHUB_TOKEN": TOKEN})
    assert code == 1 and "GITHUB_REPOSITORY" in err


def test_a_token_without_actions_read_is_an_error_not_a_verdict(repo, emu, cli):
    emu.add_token("ghs_" + "n" * 36, kind="actions", repo_permissions={REPO: {"issues": "write"}})
    code, _, err = cli("phase", "verify", "1", "--source", "github", env={"GITHUB_TOKEN": "ghs_" + "n" * 36})
    assert code == 1
    assert "cannot list artifacts phase-0-complete" in err and "403" in err


def test_zip_extraction_is_bounded_and_in_memory():
    from tw_gates.phases.artifacts import extract_artifact_json
    from tw_gates.phases.common import InvalidArtifact

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dir/.phase-0.complete.json", b"{}")
        archive.writestr("big/.phase-1.complete.json", b"0" * (2 * 1024 * 1024))
    assert extract_artifact_json(buffer.getvalue(), ".phase-0.complete.json") == b"{}"
    with pytest.raises(InvalidArtifact, match="more than"):
        extract_artifact_json(buffer.getvalue(), ".phase-1.complete.json")
    with pytest.raises(InvalidArtifact, match="not a zip"):
        extract_artifact_json(b"PK-not-really", ".phase-0.complete.json")


# -- a phase unlock proves the run that made it ------------------------------------------------

REFUSED = (
    "Phase 0 not complete. Cannot start Phase 1. Reason: no Actions artifact phase-0-complete from a successful run"
)


@pytest.mark.parametrize(
    "run, mismatch",
    [
        (
            {"path": ".github/workflows/not-phase.yml"},
            "workflow .github/workflows/not-phase.yml is not .github/workflows/phase.yml",
        ),
        ({"event": "pull_request"}, "event pull_request is not workflow_dispatch or workflow_call"),
        ({"head_branch": "attacker-branch"}, "branch attacker-branch is not main"),
        ({"head_repository": "evil/warehouse"}, "head repository evil/warehouse is not acme/warehouse (a fork)"),
        ({"conclusion": "failure"}, "conclusion failure is not success"),
    ],
)
def test_a_valid_artifact_from_a_run_that_is_not_the_phase_workflow_is_refused(repo, emu, cli, run, mismatch):
    """The attack: the lookup checked only the name and the run's conclusion, so an artifact
    uploaded by a pull_request run on attacker-branch from not-phase.yml unlocked the phase."""
    artifact_id = _publish(emu, _artifact_of_phase_0(repo, cli), **run)
    code, _, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 2, err
    assert f"{REFUSED} of .github/workflows/phase.yml on main in {REPO}" in err
    assert f"artifact {artifact_id} (run " in err and mismatch in err


def test_a_newer_artifact_from_an_attackers_run_is_passed_over(repo, emu, cli):
    data = _artifact_of_phase_0(repo, cli)
    now = time.time()
    good = _publish(emu, data, created_at=now - 300)
    _publish(
        emu,
        data,
        created_at=now - 10,
        path=".github/workflows/not-phase.yml",
        event="pull_request",
        head_branch="attacker-branch",
        head_repository="evil/warehouse",
    )
    code, out, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 0, err
    assert f"Actions artifact phase-0-complete (id {good})" in out
    assert "(.github/workflows/phase.yml, workflow_dispatch, main)" in out


def test_the_phase_workflow_and_its_branch_can_be_configured(repo, emu, cli):
    """A caller that runs phase.yml through workflow_call: its own file is the run's path."""
    _publish(emu, _artifact_of_phase_0(repo, cli), path=".github/workflows/release.yml", head_branch="release")
    code, _, err = cli("phase", "verify", "1", "--source", "github")
    assert code == 2 and "workflow .github/workflows/release.yml is not .github/workflows/phase.yml" in err
    assert "branch release is not main" in err
    code, out, err = cli(
        "phase",
        "verify",
        "1",
        "--source",
        "github",
        "--workflow",
        ".github/workflows/release.yml",
        "--branch",
        "release",
    )
    assert code == 0, err
    assert "Phase 1 may start" in out


def test_phase_yml_lets_a_person_approve_the_signing_job(repo_root):
    import yaml

    workflow = yaml.safe_load((repo_root / ".github/workflows/phase.yml").read_text())
    complete = workflow["jobs"]["complete"]
    assert complete["environment"] == "${{ inputs.environment || vars.TW_PHASE_ENVIRONMENT }}"
    assert workflow[True]["workflow_call"]["inputs"]["environment"]["type"] == "string"
    # The lookup's provenance settings reach both phase steps.
    for job in ("unlock", "complete"):
        step = next(s for s in workflow["jobs"][job]["steps"] if "phase-" in str(s.get("uses", "")))
        assert step["with"]["workflow"] == "${{ vars.TW_PHASE_WORKFLOW || '.github/workflows/phase.yml' }}"
        assert step["with"]["branch"] == "${{ vars.TW_PHASE_BRANCH }}"
