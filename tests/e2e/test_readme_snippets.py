"""Every YAML snippet of the README (and of the docs pages that show workflows) is a test.

Static, for every block: it parses, it says where it goes, actionlint accepts it as
the workflow it becomes, its pins are the release's (``org/tw-gates...@v3``) and
third-party actions are pinned by SHA.

Under act, offline, in scratch repositories that know nothing of tw-gates
(``org/tw-gates@v3`` is this checkout): the consumer snippets in a small
Flask/Django/JS application (one act run); the central snippets in a central
repository built from the "In the central repository" section alone (the registry,
the alert rules it says to copy, a behavioral suite of its own): the baseline
workflow, whose artifact is committed as the README says; then the scheduled work
(collect the consumer's signed report from the GitHub API emulator, ingest, audit,
file issues) with the other central snippets; then phase 0, to completion."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

import tw_gates
from tests.conftest import REPO_ROOT, require_tool
from tests.e2e.act_rig import build_wheelhouse, job_path, job_python
from tests.e2e.snippet_rig import actionlint as run_actionlint
from tests.e2e.snippet_rig import (
    all_snippets,
    as_workflow,
    commit_all,
    copy_file,
    init_repository,
    merge,
    scratch_rig,
    stand_ins,
    tw_gates_stand_in,
)
from tests.e2e.snippet_rig import merged_wheelhouse as merge_wheelhouses
from tw_gates.core.signing import KeyRing
from tw_gates.schemas.registry import ConsumerRegistry

SNIPPETS = all_snippets()
CONSUMER_REPO, CENTRAL_REPO = "acme/shop", "acme/token-warehouse"
SHOP_KID, SHOP_KEY = "shop-2026", "5e" * 32  # the README's key id; 32 bytes
PERF_KID, CENTRAL_KEY = "perf-2026", "c3" * 32
PHASE_KEY = "c4" * 32  # the central rings' keys: each its own, never a consumer's
WORKFLOW_TOKEN = "ghs_" + "snippetWorkflowToken" * 2
COLLECT_TOKEN = "ghs_" + "snippetCollectToken0" * 2
AUDIT_TOKEN = "ghp_" + "snippetAuditToken000" * 2
MAJOR_TAG = f"v{tw_gates.__version__.split('.')[0]}"

# A consumer nobody here wrote: renders Markdown through Jinja2, Django and the DOM,
# all of it under app/rendering/ (what its registry entry registers): a clean consumer.
CONSUMER_FILES = {
    "README.md": "# shop\n\nA small shop that renders product descriptions written in Markdown.\n",
    "app/__init__.py": "",
    "app/rendering/__init__.py": "",
    "app/rendering/markdown_view.py": (
        "from markupsafe import Markup\n\n\n"
        "def render(tokens):\n"
        "    html = ''.join(token.html for token in tokens)\n"
        "    return Markup(html)\n"
    ),
    "app/rendering/django_view.py": (
        "from django.utils.safestring import mark_safe\n\n\n"
        "def description(product):\n"
        "    return mark_safe(product.description_html)\n"
    ),
    "app/rendering/templates/product.html": "<article>{{ product.body|safe }}</article>\n",
    "app/rendering/static/preview.js": "export function preview(el, html) {\n  el.innerHTML = html;\n}\n",
    "app/views.py": "def index():\n    return 'hello'\n",
    "tests/test_views.py": "from app.views import index\n\n\ndef test_index():\n    assert index() == 'hello'\n",
}
# The central repository's own behavioral suite (G2 reads its JUnit XML).
CENTRAL_TESTS = (
    "import html\n\n\n"
    "def test_script_is_escaped():\n    assert '<script>' not in html.escape('<script>')\n\n\n"
    "def test_quotes_are_escaped():\n    assert html.escape('\"') == '&quot;'\n\n\n"
    "def test_plain_text_is_kept():\n    assert html.escape('tokens') == 'tokens'\n"
)
ROLLBACK_SCRIPT = '#!/usr/bin/env bash\necho "rolling back to ${REVISION:-the previous revision}"\n'


def by(role: str, *kinds: str) -> list:
    return [s for s in SNIPPETS if s.role == role and s.kind in kinds]


# --------------------------------------------------------------------------- static


def test_every_yaml_block_parses_and_says_where_it_goes():
    assert len(SNIPPETS) >= 10, [s.where for s in SNIPPETS]
    problems = []
    for snippet in SNIPPETS:
        try:
            data = snippet.data()
        except yaml.YAMLError as exc:
            problems.append(f"{snippet.where}: not YAML: {exc}")
            continue
        if snippet.problem:
            problems.append(f"{snippet.where}: {snippet.problem}")
        elif snippet.page == "README.md" and snippet.role is None:
            problems.append(f"{snippet.where}: no '<!-- snippet: <role> <kind> -->' comment above the block")
        elif snippet.kind == "steps" and not (isinstance(data, list) and all(isinstance(s, dict) for s in data)):
            problems.append(f"{snippet.where}: a steps snippet is a list of steps")
        elif snippet.kind == "workflow" and not (isinstance(data, dict) and isinstance(data.get("jobs"), dict)):
            problems.append(f"{snippet.where}: a workflow snippet has jobs")
        elif snippet.kind in ("workflow", "steps"):
            for job in as_workflow(snippet)["jobs"].values():
                if isinstance(job, dict) and "with" in job and not isinstance(job["with"], dict):
                    problems.append(f"{snippet.where}: `with:` holds no mapping")
                for step in job.get("steps", []) if isinstance(job, dict) else []:
                    if "with" in step and not isinstance(step["with"], dict):
                        problems.append(f"{snippet.where}: a step's `with:` holds no mapping")
    assert not problems, "\n".join(problems)
    roles = {(s.role, s.kind) for s in SNIPPETS}
    assert {("consumer", "workflow"), ("consumer", "steps"), ("central", "workflow"), ("central", "file")} <= roles


def test_file_snippets_are_valid_files(tmp_path):
    """Files a page shows are read by the loader that reads them for real."""
    from tw_gates.canary.canary import load_thresholds
    from tw_gates.canary.sources import load_queries
    from tw_gates.phases.complete import load_completion_values

    for snippet in by("central", "file"):
        if Path(snippet.target).name == "consumer_registry.yml":
            ConsumerRegistry.model_validate(snippet.data())
    loaders = {"docs/canary.md": [load_thresholds, load_queries], "docs/phases.md": [load_completion_values]}
    for page, page_loaders in loaders.items():
        fragments = [s for s in SNIPPETS if s.page == page and s.kind == "fragment"]
        assert len(fragments) == len(page_loaders), [s.where for s in fragments]
        for snippet, load in zip(fragments, page_loaders, strict=False):
            path = tmp_path / f"{Path(page).stem}-{snippet.line}.yml"
            path.write_text(snippet.text)
            load(path)  # raises UsageError, naming the problem, when the page shows a file that does not load


def test_actionlint_accepts_every_workflow_snippet(tmp_path):
    actionlint_bin = require_tool("actionlint")
    runnable = [s for s in SNIPPETS if s.kind in ("workflow", "steps")]
    workflows = {
        f"snippet-{i}.yml": (s.text if s.kind == "workflow" else yaml.safe_dump(as_workflow(s), sort_keys=False))
        for i, s in enumerate(runnable)
    }
    done = run_actionlint(workflows, actionlint_bin, tmp_path)
    named = {f"snippet-{i}.yml": s.where for i, s in enumerate(runnable)}
    report = re.sub(r"\S*(snippet-\d+\.yml)", lambda m: named[m.group(1)], done.stdout + done.stderr)
    assert done.returncode == 0, report


def test_pins_are_the_releases_and_third_party_actions_are_pinned_by_sha():
    refs: dict[str, set[str]] = {}
    # docs/e2e.md documents the test rig (its stand-in ref for the running commit), not a pin.
    pages = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md") if p.name != "e2e.md")]
    for page in pages:
        for match in re.finditer(r"org/tw-gates(?:/[\w./-]*)?@([\w.-]+)", (REPO_ROOT / page).read_text()):
            refs.setdefault(match.group(1), set()).add(page)
    # What the release publishes: the tag v<version> and the major tag it moves.
    assert set(refs) <= {MAJOR_TAG, f"v{tw_gates.__version__}"}, refs
    assert MAJOR_TAG in refs
    unpinned = []
    for snippet in (s for s in SNIPPETS if s.kind in ("workflow", "steps")):
        for job in as_workflow(snippet)["jobs"].values():
            uses = [job.get("uses", "")] + [st.get("uses", "") for st in job.get("steps", [])]
            for ref in filter(None, uses):
                owner = ref.split("@")[0]
                if owner.startswith(("./", "org/tw-gates")):
                    continue
                if not re.fullmatch(r"[0-9a-f]{40}", ref.partition("@")[2]):
                    unpinned.append(f"{snippet.where}: {ref}")
    assert not unpinned, unpinned


# --------------------------------------------------------------------------- under act


@pytest.fixture(scope="module")
def snippet_wheelhouse(tmp_path_factory) -> Path:
    """The runtime wheels plus pytest's (the central phase installs pytest for its tests)."""
    python = job_python(job_path())
    runtime = build_wheelhouse(REPO_ROOT / "requirements" / "runtime.txt", python)
    tests = build_wheelhouse(REPO_ROOT / "requirements" / "test.txt", python)
    return merge_wheelhouses(tmp_path_factory.mktemp("wheelhouse"), runtime, tests)


@pytest.fixture(scope="module")
def tw_gates_copy(tmp_path_factory) -> Path:
    return tw_gates_stand_in(tmp_path_factory.mktemp("tw-gates") / "repo")


def signed_report(consumer: Path, head: str) -> dict:
    """What the consumer's job uploads: its self-audit, signed with its key."""
    from tw_gates.core.settings import load_settings
    from tw_gates.self_audit.self_audit import SelfAuditSettings, self_audit

    settings = load_settings(
        SelfAuditSettings,
        {
            "repo_dir": consumer,
            "out": consumer.parent / "report.json",
            "repo": CONSUMER_REPO,
            "commit": head,
            "branch": "main",
            "hmac_key": SHOP_KEY,
            "hmac_key_id": SHOP_KID,
        },
    )
    return json.loads(self_audit(settings).artifact.read_text())


@pytest.mark.e2e
def test_consumer_snippets_pass_on_a_consumer_repository(act_binary, tw_gates_copy, snippet_wheelhouse, tmp_path):
    consumer = init_repository(tmp_path / "shop", CONSUMER_REPO, CONSUMER_FILES)
    rig = scratch_rig(
        act=act_binary,
        base_dir=tmp_path / "act",
        source=consumer,
        repository=CONSUMER_REPO,
        wheelhouse=snippet_wheelhouse,
    )
    snippets = by("consumer", "workflow", "steps")
    workflow, placed = merge(snippets, "consumer snippets")
    started = time.monotonic()
    run = rig.run(workflow, secrets={"TW_HMAC_KEY": SHOP_KEY}, stand_ins=stand_ins(tw_gates_copy), timeout=900)
    seconds = time.monotonic() - started
    print(f"consumer snippets: {len(snippets)} in one act run, {seconds:.0f}s")
    failed = {k: j.result for k, j in run.jobs.items() if j.result != "success"}
    assert run.ok and not failed, f"{failed}; snippets: { {i: s.where for i, s in placed.items()} }\n{run.tail(80)}"

    one_line = run.job("s0-self-audit")
    assert re.search(r"role: consumer \(no \S*consumer_registry\.yml: ", one_line.log), one_line.log
    assert "gates: platform, self-audit (the consumer repository's default gates)" in one_line.log
    assert any("unsigned and was not uploaded" in a.message for a in one_line.annotations), one_line.annotations
    assert "### tw-gates self-audit" in one_line.summary and "Role: **consumer**" in one_line.summary

    signed = run.job("s1-self-audit")
    assert signed.step("tw").outputs.get("signed") == "true", signed.step("tw").outputs
    uploaded = run.artifacts()
    report = json.loads(next(uploaded["tw-self-audit"].rglob("*.json")).read_text())
    assert report["repo"] == CONSUMER_REPO and report["signature"]["kid"] == SHOP_KID
    KeyRing({SHOP_KID: SHOP_KEY}).verify(report)
    assert {h["path"].split("/")[0] for h in report["hits"]} == {"app"} and len(report["hits"]) >= 3
    assert (uploaded["code-scanning"] / "tw-gates.sarif").is_file()  # the SARIF reached code scanning

    steps_job = run.job("s2-snippet")
    assert int(steps_job.step("scan").outputs["hits"]) >= 3


@pytest.mark.e2e
def test_central_snippets_set_up_a_central_repository_that_completes_phase_0(
    act_binary, tw_gates_copy, snippet_wheelhouse, github_emulator, tmp_path
):
    emu = github_emulator
    emu.add_repo(CENTRAL_REPO, private=True)
    emu.add_repo(CONSUMER_REPO, collaborators={"auditor": "admin"})
    emu.set_branch_protection(CONSUMER_REPO, "main", contexts=["self-audit"])
    emu.add_token(
        WORKFLOW_TOKEN,
        kind="actions",
        repo_permissions={CENTRAL_REPO: {"actions": "read", "contents": "write", "issues": "write"}},
    )
    emu.add_token(COLLECT_TOKEN, kind="app", repo_permissions={CONSUMER_REPO: {"actions": "read", "metadata": "read"}})
    emu.add_token(AUDIT_TOKEN, login="auditor", kind="user", scopes=["repo"])

    # The consumer's signed report, as its `uses: org/tw-gates@v3` job uploaded it.
    consumer = init_repository(tmp_path / "shop", CONSUMER_REPO, CONSUMER_FILES)
    head = commit_all(consumer, "release")
    run_id = emu.add_workflow_run(
        CONSUMER_REPO, head_branch="main", head_sha=head, path=".github/workflows/tw-gates.yml"
    )
    emu.add_artifact(
        CONSUMER_REPO,
        "tw-self-audit",
        files={"tw-self-audit.json": json.dumps(signed_report(consumer, head))},
        run_id=run_id,
    )

    # The central repository, from the README's central section.
    files = {s.target: s.text for s in by("central", "file")}
    files |= {
        f".github/workflows/{s.target}": s.text
        for s in SNIPPETS
        if s.role == "central" and s.kind == "workflow" and s.page == "README.md"
    }
    files["tests/behavioral/test_escaping.py"] = CENTRAL_TESTS
    files["deploy/rollback.sh"] = ROLLBACK_SCRIPT  # docs/canary.md's rollback receiver runs it
    central = init_repository(tmp_path / "central", CENTRAL_REPO, files)
    copy_file(REPO_ROOT / "prometheus" / "rules" / "audit_rules.yml", central / "prometheus/rules/audit_rules.yml")
    commit_all(central, "alert rules, copied from tw-gates as the README says")
    rig = scratch_rig(
        act=act_binary,
        base_dir=tmp_path / "act",
        source=central,
        repository=CENTRAL_REPO,
        wheelhouse=snippet_wheelhouse,
        api_url=emu.url,
    )
    secrets = {
        "GITHUB_TOKEN": WORKFLOW_TOKEN,
        "TW_HMAC_KEYS": json.dumps({SHOP_KID: SHOP_KEY}),  # the consumers' keys only
        "TW_BASELINE_KEY": CENTRAL_KEY,
        "TW_BASELINE_KEYS": json.dumps({PERF_KID: CENTRAL_KEY}),
        "TW_PHASE_KEY": PHASE_KEY,
        "COLLECT_TOKEN": COLLECT_TOKEN,
        "AUDIT_TOKEN": AUDIT_TOKEN,
    }
    options = {"secrets": secrets, "stand_ins": stand_ins(tw_gates_copy), "timeout": 1200}
    seconds = {}

    # 3. The signed baseline: dispatch, download the artifact, commit it.
    started = time.monotonic()
    baseline = rig.run(".github/workflows/baseline.yml", event="workflow_dispatch", **options)
    seconds["baseline"] = time.monotonic() - started
    baseline.expect_success()
    captured = next(baseline.artifacts()["perf-baseline"].rglob("baseline.json"))
    assert json.loads(captured.read_text())["signature"]["kid"] == PERF_KID
    copy_file(captured, rig.repo / "perf" / "baseline.json")
    commit_all(rig.repo, "perf/baseline.json, reviewed")

    # 4, 5, 6: the scheduled work and the other central snippets, in one run.
    scheduled = [
        s
        for s in SNIPPETS
        if s.role == "central" and s.kind in ("workflow", "steps") and s.target not in ("baseline.yml", "phase.yml")
    ]
    workflow, placed = merge(scheduled, "central snippets")
    started = time.monotonic()
    run = rig.run(workflow, **options)
    seconds["scheduled"] = time.monotonic() - started
    failed = {k: j.result for k, j in run.jobs.items() if j.result != "success"}
    assert run.ok and not failed, f"{failed}; snippets: { {i: s.where for i, s in placed.items()} }\n{run.tail(80)}"
    ingest_index = next(i for i, s in placed.items() if s.target == "ingest.yml")
    ingest = run.job(f"s{ingest_index}-ingest")
    assert "DOWNLOADED acme/shop" in ingest.log and "ingest: 1 accepted, 0 rejected" in ingest.log
    report = json.loads(next(run.artifacts()["tw-gates-audit-report"].rglob("*.json")).read_text())
    assert report["exit_code"] == 0 and report["unregistered_hits"] == []
    assert report["checks"]["p0_required_checks"]["status"] == "pass"
    assert report["checks"]["p0_baseline"]["status"] == "pass"
    assert emu.count("GET", rf"/repos/{CONSUMER_REPO}/actions/artifacts/\d+/zip$") == 1
    for path in rig.repo.glob(".github/workflows/e2e-*.yml"):
        path.unlink()  # the merged run's file: the central repository is what the README says

    # 5. Phase 0, to completion.
    started = time.monotonic()
    phase = rig.run(".github/workflows/phase.yml", event="workflow_dispatch", inputs={"phase": "0"}, **options)
    seconds["phase 0"] = time.monotonic() - started
    print("central snippets: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    phase.expect_success()
    uploaded = phase.artifacts()["phase-0-complete"]
    artifact = json.loads(next(uploaded.rglob(".phase-0.complete.json")).read_text())
    assert artifact["phase"] == 0 and artifact["baseline_pass_count"] == "3/3"
    assert artifact["ci_gates_passed"] == ["G1", "G2", "G3", "G4", "G5"]
    assert artifact["safety_nets_count_after"] == 5
