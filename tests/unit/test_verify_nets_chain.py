"""G1..G5 in the gate chain (`tw-gates gates`, the umbrella action): settings from
the environment, chain order, and the first failing gate skipping the rest."""

from __future__ import annotations

import json
import re

import pytest

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


# --------------------------------------------------------------------------- the repository's role

CONSUMER_ENV = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "a" * 40, "GITHUB_REF_NAME": "main"}


def consumer_repo(root):
    """A consumer: renders Markdown through Jinja2's Markup, registers no consumers."""
    return make_repo(root, {"app/views.py": "from markupsafe import Markup\nhtml = Markup(render(md))\n"})


def test_without_a_registry_the_repository_is_a_consumer_platform_and_self_audit(tmp_path, cli):
    repo = consumer_repo(tmp_path / "shop")
    out_file = tmp_path / "tw-self-audit.json"
    env = {**CONSUMER_ENV, "TW_REPO_DIR": str(repo), "TW_SELF_AUDIT_OUT": str(out_file)}
    code, out, err = cli("gates", env=env)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == (
        f"role: consumer (no {repo.as_posix()}/consumer_registry.yml: a repository that registers no consumers "
        "renders Token Warehouse output (declare role: central to run the gate chain G1..G5))"
    )
    assert lines[1] == "gates: platform, self-audit (the consumer repository's default gates)"
    assert [line.split()[:2] for line in lines if re.match(r"(platform|self-audit) +(PASS|FAIL)", line)] == [
        ["platform", "PASS"],
        ["self-audit", "PASS"],
    ]
    assert json.loads(out_file.read_text())["repo"] == "acme/shop"
    # No key: the artifact is unsigned, and the log says what that means.
    assert "the artifact is unsigned (no hmac-key input, TW_HMAC_KEY not set)" in err
    assert not any(line.startswith("::") for line in (out + err).splitlines())  # no workflow command off a runner


def test_a_consumer_registry_makes_it_the_central_repository(tmp_path, cli):
    repo = make_repo(tmp_path / "central", {**GOOD, "consumer_registry.yml": 'schema_version: "1.0"\nconsumers: []\n'})
    code, out, _ = cli("gates", env={"TW_REPO_DIR": str(repo), "PATH": str(tmp_path / "no-promtool")})
    lines = out.splitlines()
    assert lines[0].startswith("role: central (") and "consumer_registry.yml found" in lines[0]
    assert lines[1] == (
        "gates: platform, verify-nets, behavioral, audit, hmac-policy, telemetry-check "
        "(the central repository's default gates)"
    )
    # G2 has no JUnit XML here: the chain stops there and says why.
    assert code == 1 and "behavioral       FAIL (exit 1)  no JUnit XML given" in out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_declared_role_wins_over_the_checkout(tmp_path, cli, how):
    repo = consumer_repo(tmp_path / "shop")
    (repo / "consumer_registry.yml").write_text('schema_version: "1.0"\nconsumers: []\n')
    env = {**CONSUMER_ENV, "TW_REPO_DIR": str(repo), "TW_SELF_AUDIT_OUT": str(tmp_path / "a.json")}
    argv = ["gates", "--role", "consumer"] if how == "flag" else ["gates"]
    if how == "env":
        env["TW_ROLE"] = "consumer"
    code, out, _ = cli(*argv, env=env)
    assert code == 0, out
    assert out.splitlines()[0] == "role: consumer (declared (role input, TW_ROLE or --role))"


def test_named_gates_run_whatever_the_role_and_the_list_shows_the_roles(tmp_path, cli):
    code, out, _ = cli("gates", "--only", "r2", env={"TW_REPO_DIR": str(tmp_path)})
    assert code == 0 and "gates: platform (as selected (--only))" in out
    code, out, _ = cli("gates", "--list")
    assert code == 0
    assert re.search(r"^self-audit +S1 consumer self-audit .*\(default for: consumer\)", out, re.M)
    assert re.search(r"^verify-nets +G1 .*\(default for: central\)", out, re.M)
    assert re.search(r"^platform +R2 .*\(default for: consumer, central\)", out, re.M)
    assert re.search(r"^canary +.*\(optional\) runs when named", out, re.M)
    code, _, err = cli("gates", "--role", "shop")
    assert code == 1 and "invalid choice: 'shop'" in err
