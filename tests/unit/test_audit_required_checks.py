"""P0 required checks when GitHub hides branch protection: its 404 means "unknown", and
the audit follows GitHub's documented fallback (rulesets, the branch's protection summary)
instead of reporting a protected branch as unprotected. Against the emulator over HTTP."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tw_gates.chain.audit_checks import check_required_checks
from tw_gates.chain.audit_settings import AuditSettings
from tw_gates.core.errors import ExitCode
from tw_gates.core.settings import load_settings

WORKFLOW_TOKEN = "ghs_" + "W" * 36  # no administration permission: protection answers 404
ADMIN_TOKEN = "ghp_" + "M" * 36


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_repo("acme/app", collaborators={"boss": "admin"})
    github_emulator.add_token(WORKFLOW_TOKEN, kind="actions", repo_permissions={"acme/app": {"contents": "read"}})
    github_emulator.add_token(ADMIN_TOKEN, login="boss")
    return github_emulator


def audit(emu, token: str, required: list[str], branch: str = "main") -> dict[str, tuple[str, str, int]]:
    settings = load_settings(AuditSettings, {"github_token": token, "github_api_url": emu.url, "github_retries": 0})
    consumer = SimpleNamespace(repo="acme/app", default_branch=branch, required_checks=required)
    checks = check_required_checks(settings, SimpleNamespace(consumers=[consumer]), progress=lambda _: None)
    return {c.name: (c.status, c.detail, int(c.exit_code)) for c in checks}


def test_a_404_on_protection_is_unknown_and_the_branch_summary_decides(emu):
    emu.set_branch_protection("acme/app", "main", contexts=["ci", "tw-gates / self-audit"])
    status, detail, code = audit(emu, WORKFLOW_TOKEN, ["ci"])["required_checks acme/app"]
    assert emu.count("GET", r"/protection/required_status_checks$", status=404) == 1
    assert (status, code) == ("pass", 0), detail  # before: read as "not protected", a false P0
    assert "branch protection: ci, tw-gates / self-audit" in detail
    # The admin's view agrees.
    assert audit(emu, ADMIN_TOKEN, ["ci"])["required_checks acme/app"][0] == "pass"


def test_an_unprotected_branch_is_known_unprotected_from_its_summary(emu):
    status, detail, code = audit(emu, WORKFLOW_TOKEN, ["ci"])["required_checks acme/app"]
    assert (status, code) == ("fail", ExitCode.P0_PROTECTION)
    assert detail == "acme/app@main does not require ci (required now: none required)"


def test_rulesets_count_and_an_unreadable_branch_stays_unknown(emu):
    emu.add_ruleset("acme/app", "gates", required_checks=["ci"])
    assert audit(emu, WORKFLOW_TOKEN, ["ci"])["required_checks acme/app"][0] == "pass"
    status, detail, code = audit(emu, WORKFLOW_TOKEN, ["ci", "lint"], branch="gone")["required_checks acme/app"]
    assert (status, code) == ("fail", ExitCode.P0_PROTECTION)
    assert "classic branch protection not readable with this token" in detail and "'gone' was not found" in detail
