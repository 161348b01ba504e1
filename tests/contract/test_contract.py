"""The contract itself: the pinned description is what extract_openapi.py makes of
@octokit/openapi, every route of the emulator is an operation GitHub describes and
answers in GitHub's shapes, and the checker does reject what GitHub would not accept
or send. (Every other test's traffic is checked by plugin.py as it runs.)"""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.contract import extract_openapi
from tests.contract.plugin import RECORDER
from tests.contract.validator import SUBSET, Contract
from tests.emulator import GitHubEmulator
from tests.emulator.handlers import ROUTER
from tests.emulator.traffic import Exchange
from tw_gates.core.github_client import GitHubClient

# What tw-gates itself calls (file-issues, the canary, the audit, collect, phases).
PRODUCT_OPERATIONS = {
    "GET /rate_limit",
    "GET /repos/{owner}/{repo}",
    "GET /repos/{owner}/{repo}/issues",
    "POST /repos/{owner}/{repo}/issues",
    "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    "POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
    "POST /repos/{owner}/{repo}/labels",
    "POST /repos/{owner}/{repo}/dispatches",
    "GET /repos/{owner}/{repo}/branches/{branch}",
    "GET /repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
    "GET /repos/{owner}/{repo}/rules/branches/{branch}",
    "GET /repos/{owner}/{repo}/actions/artifacts",
    "GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
    "GET /repos/{owner}/{repo}/actions/runs/{run_id}",
}
REPO = "acme/widgets"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


def test_the_subset_is_the_pinned_package_and_lists_exactly_the_operations(contract):
    source = json.loads(SUBSET.read_text())["x-source"]
    assert (source["package"], source["version"]) == ("@octokit/openapi", extract_openapi.PINNED)
    assert source["integrity"].startswith("sha512-") and re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    listed = {f"{m.upper()} {t}" for m, t in extract_openapi.read_operations()}
    assert contract.names == listed and len(listed) == 33
    assert contract.names >= PRODUCT_OPERATIONS


def _sample(template: str) -> str:
    values = {"owner": "acme", "repo": "widgets", "branch": "release/1.2", "archive_format": "zip", "name": "x"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "7" if "id" in m.group(1) else "u"), template)


def test_every_route_of_the_emulator_is_an_operation_github_describes(contract):
    routes = [r for r in ROUTER.routes if not r.template.startswith("/_blobs/")]
    assert len(routes) == 33
    for route in routes:
        op = contract.match(route.method, _sample(route.template))
        assert op is not None, f"{route.method} {route.template}"
        shape = re.sub(r"\{[^}]+\}", "{}", route.template)
        assert shape == re.sub(r"\{[^}]+\}", "{}", op.template), (route.template, op.template)


def _call(emu: GitHubEmulator, method: str, path: str, body=None, **params):
    headers = {
        "Authorization": "Bearer t",
        "X-GitHub-Api-Version": "2022-11-28",
        "Accept": "application/vnd.github+json",
    }
    resp = requests.request(method, emu.url + path, json=body, params=params, headers=headers, timeout=10)
    assert resp.status_code < 400, (method, path, resp.status_code, resp.text[:200])
    return resp


def test_every_operation_answers_in_githubs_shapes(github_emulator):
    emu = github_emulator
    emu.add_repo(REPO, branches=["release/1.2"])
    emu.add_token("t", login="acme", kind="user")  # the owner: admin
    emu.set_branch_protection(REPO, "main", contexts=["ci"])
    ruleset = emu.add_ruleset(REPO, "gates", required_checks=["ci", {"context": "x", "integration_id": 7}])
    run = emu.add_workflow_run(REPO)
    artifact = emu.add_artifact(REPO, "report", files={"r.json": "{}"}, run_id=run)
    before = dict(RECORDER.by_operation)
    start = len(RECORDER.violations)
    repo = f"/repos/{REPO}"
    for method, path, body, params in [
        ("GET", "/user", None, {}),
        ("GET", "/users/acme", None, {}),
        ("GET", "/rate_limit", None, {}),
        ("GET", repo, None, {}),
        ("GET", f"{repo}/collaborators/acme/permission", None, {}),
        ("POST", f"{repo}/dispatches", {"event_type": "go", "client_payload": {"a": 1}}, {}),
        ("POST", f"{repo}/labels", {"name": "tw-gates", "color": "b60205", "description": "d"}, {}),
        ("GET", f"{repo}/labels", None, {"per_page": 100}),
        ("GET", f"{repo}/labels/tw-gates", None, {}),
        ("POST", f"{repo}/issues", {"title": "t", "body": "b", "labels": ["tw-gates"], "assignees": ["acme"]}, {}),
        ("GET", f"{repo}/issues", None, {"state": "open", "labels": "tw-gates", "sort": "created", "per_page": 100}),
        ("GET", f"{repo}/issues/1", None, {}),
        ("PATCH", f"{repo}/issues/1", {"title": "t2", "body": "b2"}, {}),
        ("POST", f"{repo}/issues/1/comments", {"body": "c"}, {}),
        ("GET", f"{repo}/issues/1/comments", None, {}),
        ("PATCH", f"{repo}/issues/comments/{{comment}}", {"body": "c2"}, {}),
        ("GET", f"{repo}/issues/comments/{{comment}}", None, {}),
        ("POST", f"{repo}/issues/1/labels", {"labels": ["triaged"]}, {}),
        ("GET", f"{repo}/issues/1/labels", None, {}),
        ("DELETE", f"{repo}/issues/1/labels/triaged", None, {}),
        ("PATCH", f"{repo}/issues/1", {"state": "closed", "state_reason": "not_planned"}, {}),
        ("GET", "/search/issues", None, {"q": f"repo:{REPO} label:tw-gates is:issue"}),
        ("GET", f"{repo}/branches/main", None, {}),
        ("GET", f"{repo}/branches/release/1.2", None, {}),
        ("GET", f"{repo}/branches/main/protection", None, {}),
        ("GET", f"{repo}/branches/main/protection/required_status_checks", None, {}),
        ("GET", f"{repo}/rulesets", None, {}),
        ("GET", f"{repo}/rulesets/{ruleset}", None, {}),
        ("GET", f"{repo}/rules/branches/main", None, {"per_page": 100, "page": 1}),
        ("GET", f"{repo}/actions/runs", None, {"branch": "main"}),
        ("GET", f"{repo}/actions/runs/{run}", None, {}),
        ("GET", f"{repo}/actions/runs/{run}/artifacts", None, {}),
        ("GET", f"{repo}/actions/artifacts", None, {"name": "report", "per_page": 100}),
        ("GET", f"{repo}/actions/artifacts/{artifact}", None, {}),
    ]:
        if "{comment}" in path:
            path = path.replace("{comment}", str(emu.comments(REPO, 1)[0]["id"]))
        _call(emu, method, path, body, **params)
    zipped = requests.get(
        f"{emu.url}{repo}/actions/artifacts/{artifact}/zip",
        headers={"Authorization": "Bearer t", "X-GitHub-Api-Version": "2022-11-28"},
        allow_redirects=False,
        timeout=10,
    )
    assert zipped.status_code == 302
    exercised = {op for op, n in RECORDER.by_operation.items() if n > before.get(op, 0)}
    assert exercised == Contract().names  # all 33, each answered in a shape the description accepts
    assert RECORDER.violations[start:] == []


def _exchange(method="GET", path=f"/repos/{REPO}", status=200, body=None, response=None, query=(), **headers):
    return Exchange(
        method, path, list(query), {k.replace("_", "-"): v for k, v in headers.items()}, body or b"", status, response
    )


def test_the_checker_rejects_what_github_would_not_accept_or_send(contract):
    problems = [str(v) for v in contract.check(_exchange(path="/repos/a/b/secrets"))]
    assert problems == ["GET /repos/a/b/secrets: request: no such operation in GitHub's description"]
    listing = "/repos/a/b/issues"
    assert "query parameter 'label' is not defined" in str(
        contract.check(_exchange(path=listing, query=[("label", "x")], response=[]))
    )
    assert "state=" in str(contract.check(_exchange(path=listing, query=[("state", "any")], response=[])))
    create = {"method": "POST", "path": listing, "status": 201}
    typo = contract.check(_exchange(**create, body=b'{"title": "t", "lables": ["x"]}', response=None))
    assert any("'lables' was unexpected" in str(v) for v in typo)
    assert any("'title' is a required property" in str(v) for v in contract.check(_exchange(**create, body=b"{}")))
    user_without_urls = {"login": "x", "id": 1}
    shapes = contract.check(_exchange(path="/users/x", response=user_without_urls))
    assert shapes and all(v.where == "response" for v in shapes)
    wrong_status = contract.check(_exchange(**{**create, "status": 200}, body=b'{"title": "t"}', response={}))
    assert any("status 200 is not one GitHub documents" in str(v) for v in wrong_status)
    bare = contract.check(_exchange(path="/rate_limit", user_agent="tw-gates/0.1.0", response=None, status=304))
    assert {v.message for v in bare} >= {
        "no X-GitHub-Api-Version: 2022-11-28 header",
        "no Accept: application/vnd.github+json header",
    }


def test_tw_gates_requests_pass_the_header_rules(github_emulator):
    github_emulator.add_repo(REPO)
    github_emulator.add_token("t", login="acme")
    start = len(RECORDER.violations)
    before = sum(RECORDER.product_requests.values())
    client = GitHubClient("t", github_emulator.url, write_interval=0)
    client.rate_limit_remaining()
    client.request_json("GET", f"/repos/{REPO}")
    client.write("POST", f"/repos/{REPO}/labels", {"name": "tw-gates", "color": "b60205"}, expect=201)
    client.close()
    assert sum(RECORDER.product_requests.values()) - before == 3 and RECORDER.violations[start:] == []
