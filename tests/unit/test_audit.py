"""G3 audit against the GitHub emulator (real HTTP): P0 required checks through
branch protection and rulesets, the signed baseline, performance, and the
unregistered hits of the accepted artifacts."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.unit.test_baseline import capture_doc
from tw_gates.chain.unregistered_hits import compile_glob, path_matches
from tw_gates.core.signing import PERFORMANCE_BASELINE, KeyRing
from tw_gates.schemas.audit import AuditReport

TOKEN = "ghp_" + "A" * 36
ACTIONS_TOKEN = "ghs_" + "B" * 36  # like a workflow's GITHUB_TOKEN: no administration permission
KEY = "audit-test-signing-key-0123456789"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_token(TOKEN, login="auditor", kind="user", scopes=["repo"])
    for repo in ("acme/web", "acme/docs"):
        github_emulator.add_repo(repo, default_branch="main", collaborators={"auditor": "admin"})
    github_emulator.add_token(
        ACTIONS_TOKEN,
        kind="actions",
        repo_permissions={"acme/web": {"contents": "read"}, "acme/docs": {"contents": "read"}},
    )
    return github_emulator


class Setup:
    """Files of one audit run in a tmp folder, and the environment to run it with."""

    def __init__(self, root: Path, emu) -> None:
        self.root, self.emu = root, emu
        self.registry = root / "consumer_registry.yml"
        self.baseline = root / "perf" / "baseline.json"
        self.report = root / "out" / "audit.json"
        self.artifacts = root / "accepted.jsonl"
        self.write_registry()
        self.write_baseline()

    def write_registry(self, text: str | None = None) -> None:
        self.registry.write_text(
            text
            or """\
schema_version: "1.0"
consumers:
  - repo: acme/web
    code_paths: ["app/rendering/**", "*.j2"]
    required_checks: ["tw-gates / self-audit", "tests"]
  - repo: acme/docs
    default_branch: main
    code_paths: ["site/templates/"]
    required_checks: ["tw-gates / self-audit"]
    severity: low
"""
        )

    def write_baseline(self, signed: bool = True, **values) -> None:
        doc = capture_doc(**values).model_dump(mode="json", exclude_none=True)
        if signed:
            doc = KeyRing(signing_key=KEY, signing_kid="perf", doc_type=PERFORMANCE_BASELINE).sign(doc)
        self.baseline.parent.mkdir(parents=True, exist_ok=True)
        self.baseline.write_text(json.dumps(doc))

    def protect(self) -> None:
        self.emu.set_branch_protection("acme/web", "main", contexts=["tests"])
        self.emu.add_ruleset("acme/web", "gates", required_checks=["tw-gates / self-audit"])
        self.emu.set_branch_protection("acme/docs", "main", contexts=["tw-gates / self-audit", "lint"])

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "GITHUB_API_URL": self.emu.url,
            "GITHUB_TOKEN": TOKEN,
            "TW_BASELINE_KEYS": json.dumps({"perf": KEY}),
            "TW_GITHUB_RETRIES": "1",
            "TW_GITHUB_BACKOFF": "0",
        }
        env.update(extra)
        return env

    def argv(self, *more) -> list:
        return ["audit", "--report", self.report, "--registry", self.registry, "--baseline", self.baseline, *more]

    def report_json(self) -> AuditReport:
        return AuditReport.model_validate_json(self.report.read_text())


@pytest.fixture
def setup(tmp_path, emu) -> Setup:
    return Setup(tmp_path, emu)


def artifact(repo: str, hits: list[tuple[str, int, str]], generated_at: str = "2026-03-01T10:00:00Z") -> str:
    doc = {
        "schema_version": "1.0",
        "repo": repo,
        "commit": SHA,
        "branch": "main",
        "generated_at": generated_at,
        "tool_version": "0.1.0",
        "hits": [{"path": p, "line": n, "pattern": k} for p, n, k in hits],
    }
    return json.dumps(KeyRing(signing_key="consumer-key-0123456789abcdefghij", signing_kid="c1").sign(doc))


# --------------------------------------------------------------------------- P0: required checks


def test_green_light_union_of_branch_protection_and_rulesets(setup, cli):
    setup.protect()
    code, out, _ = cli(*setup.argv(), env=setup.env())
    assert code == 0, out
    report = setup.report_json()
    assert report.exit_code == 0 and report.audit_id.startswith("local-")
    web = report.checks["required_checks acme/web"]
    assert web.status == "pass"
    assert web.detail == (
        "acme/web@main requires tw-gates / self-audit, tests "
        "(rulesets: tw-gates / self-audit; branch protection: tests)"
    )
    assert report.checks["p0_required_checks"].detail == "2/2 consumer(s) require their status checks"
    assert (
        report.checks["p0_baseline"].status == "pass" and "signed by key 'perf'" in report.checks["p0_baseline"].detail
    )
    assert report.checks["performance"].status == "skip" and report.checks["unregistered_hits"].status == "skip"
    assert out.splitlines()[-1].startswith("G3: green light")


def test_missing_required_check_is_exit_5_and_the_report_is_still_written(setup, cli):
    setup.protect()
    setup.emu.remove_branch_protection("acme/web", "main")
    code, out, err = cli(*setup.argv(), env=setup.env())
    assert code == 5
    report = setup.report_json()
    assert report.exit_code == 5
    assert report.checks["required_checks acme/web"].detail == (
        "acme/web@main does not require tests (required now: rulesets: tw-gates / self-audit)"
    )
    assert report.checks["required_checks acme/docs"].status == "pass"
    assert "tw-gates audit: error: p0_required_checks: 1/2 consumer(s) require their status checks" in err


def test_rulesets_in_evaluate_mode_do_not_count(setup, cli):
    setup.emu.set_branch_protection("acme/docs", "main", contexts=["tw-gates / self-audit"])
    setup.emu.add_ruleset(
        "acme/web", "trial", required_checks=["tw-gates / self-audit", "tests"], enforcement="evaluate"
    )
    assert cli(*setup.argv(), env=setup.env())[0] == 5
    setup.emu.add_ruleset(
        "acme/web", "enforced", branch_patterns=["main"], required_checks=["tw-gates / self-audit", "tests"]
    )
    assert cli(*setup.argv(), env=setup.env())[0] == 0


def test_token_without_admin_rights_relies_on_rulesets(setup, cli):
    # Classic protection needs administration: read, which a workflow token never has; GitHub
    # answers it 404, and the branch's own protection summary (readable by anyone) tells.
    setup.protect()
    code, _, _ = cli(*setup.argv(), env=setup.env(GITHUB_TOKEN=ACTIONS_TOKEN))
    assert code == 0
    detail = setup.report_json().checks["required_checks acme/docs"].detail
    assert "requires tw-gates / self-audit (branch protection: lint, tw-gates / self-audit)" in detail
    setup.emu.remove_branch_protection("acme/docs", "main")
    assert cli(*setup.argv(), env=setup.env(GITHUB_TOKEN=ACTIONS_TOKEN))[0] == 5
    setup.emu.add_ruleset("acme/docs", "gates", required_checks=["tw-gates / self-audit"])
    setup.emu.add_ruleset("acme/web", "tests", required_checks=["tests"])
    assert cli(*setup.argv(), env=setup.env(GITHUB_TOKEN=ACTIONS_TOKEN))[0] == 0


def test_without_token_the_p0_check_fails_closed(setup, cli):
    code, _, err = cli(*setup.argv(), env=setup.env(GITHUB_TOKEN=""))
    assert code == 5
    assert "GITHUB_TOKEN is not set: the required status checks of acme/web, acme/docs cannot be confirmed" in err
    assert setup.emu.count() == 0


def test_registry_without_required_checks_needs_no_token(setup, cli):
    setup.write_registry('consumers:\n  - repo: acme/web\n    code_paths: ["app/**"]\n')
    code, out, _ = cli(*setup.argv(), env=setup.env(GITHUB_TOKEN=""))
    assert code == 0, out
    assert setup.report_json().checks["p0_required_checks"].status == "skip"


def test_repository_the_token_cannot_see(setup, cli):
    setup.protect()
    setup.write_registry('consumers:\n  - repo: acme/secret\n    required_checks: ["x"]\n')
    code, _, _ = cli(*setup.argv(), env=setup.env())
    assert code == 5
    assert (
        "cannot read acme/secret: GitHub answered 404"
        in setup.report_json().checks["required_checks acme/secret"].detail
    )


def test_github_down_is_no_decision_exit_1_but_still_reported(setup, cli):
    setup.protect()
    setup.emu.inject("server_error", path=r"/rules/branches/", status=503, times=None)
    code, _, _ = cli(*setup.argv(), env=setup.env())
    assert code == 1
    report = setup.report_json()
    assert report.exit_code == 1 and "GitHub answered 503" in report.checks["required_checks acme/web"].detail
    assert "required_checks acme/docs" not in report.checks  # stopped asking a failing service
    assert report.checks["p0_baseline"].status == "pass"


def test_default_branch_comes_from_the_api(setup, cli):
    setup.emu.add_repo("acme/api", default_branch="trunk", collaborators={"auditor": "admin"})
    setup.emu.add_ruleset("acme/api", "r", branch_patterns=["~DEFAULT_BRANCH"], required_checks=["ci"])
    setup.write_registry('consumers:\n  - repo: acme/api\n    required_checks: ["ci"]\n')
    assert cli(*setup.argv(), env=setup.env())[0] == 0
    assert setup.report_json().checks["required_checks acme/api"].detail.startswith("acme/api@trunk requires ci")


# --------------------------------------------------------------------------- P0: baseline, performance


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (lambda s: s.baseline.unlink(), "baseline not found"),
        (lambda s: s.write_baseline(signed=False), "signature rejected (missing_signature)"),
        (
            lambda s: s.baseline.write_text(s.baseline.read_text().replace('"p95_ms": 10.0', '"p95_ms": 9.0')),
            "signature rejected (bad_signature)",
        ),
    ],
)
def test_baseline_missing_unsigned_or_tampered_is_exit_6(setup, cli, prepare, expected):
    setup.protect()
    prepare(setup)
    code, _, err = cli(*setup.argv(), env=setup.env())
    assert code == 6 and expected in err
    checks = setup.report_json().checks
    assert checks["p0_baseline"].status == "fail" and checks["performance"].status == "skip"


def test_baseline_needs_the_verification_key(setup, cli):
    setup.protect()
    code, _, err = cli(*setup.argv(), env=setup.env(TW_BASELINE_KEYS=""))
    assert code == 6 and "unknown_kid" in err


def test_protection_failure_takes_precedence_over_baseline(setup, cli):
    setup.baseline.unlink()
    code, _, _ = cli(*setup.argv(), env=setup.env())
    report = setup.report_json()
    assert code == 5 and report.checks["p0_baseline"].status == "fail"


def test_performance_breach_is_exit_2(setup, cli, tmp_path):
    setup.protect()
    current = tmp_path / "current.json"
    current.write_text(capture_doc(p95=13.0).model_dump_json())
    code, _, err = cli(*setup.argv("--current", current), env=setup.env())
    assert code == 2
    assert "latency_p95_ms 13 vs baseline 10 (limit 12.5, x1.25, at least +0.5 ms): BREACH" in err
    current.write_text(capture_doc(p95=12.0, rss=69.0).model_dump_json())
    assert cli(*setup.argv("--current", current), env=setup.env())[0] == 0
    assert setup.report_json().checks["performance"].status == "pass"


def test_incomparable_capture_is_exit_1(setup, cli, tmp_path):
    setup.protect()
    current = tmp_path / "current.json"
    current.write_text(capture_doc(corpus_sha="c" * 64).model_dump_json())
    code, _, err = cli(*setup.argv("--current", current), env=setup.env())
    assert code == 1 and "another corpus" in err


# --------------------------------------------------------------------------- unregistered hits


def write_exceptions(setup: Setup, entries: str) -> Path:
    path = setup.root / "audit_exceptions.yml"
    path.write_text('schema_version: "1.0"\nexceptions:\n' + entries)
    return path


def test_unregistered_hits_with_globs_exceptions_and_severities(setup, cli):
    setup.protect()
    today = date.today()
    exceptions = write_exceptions(
        setup,
        f"""\
  - repo: acme/web
    path: legacy/**
    pattern: jinja2-template
    reason: migrating off the legacy renderer
    approver: security-lead
    expires: {today + timedelta(days=30)}
  - repo: acme/web
    path: old/
    reason: removed next sprint
    approver: security-lead
    expires: {today - timedelta(days=1)}
""",
    )
    setup.artifacts.write_text(
        "\n".join(
            [
                artifact(
                    "acme/web", [("app/rendering/page.py", 3, "jinja2-template")], "2026-03-01T00:00:00Z"
                ),  # older: ignored
                artifact(
                    "acme/web",
                    [
                        ("app/rendering/page.py", 9, "jinja2-template"),  # registered code path
                        ("emails/welcome.j2", 1, "jinja2-template"),  # "*.j2" matches the name at any depth
                        ("legacy/render.py", 4, "jinja2-template"),  # live exception
                        ("legacy/render.py", 5, "jinja2-from-string"),  # exception is for another pattern
                        ("old/view.py", 7, "dom-inner-html"),  # only an expired exception
                        ("src/app.py", 12, "unknown-pattern-id"),  # unknown to the catalog: medium
                    ],
                    "2026-03-02T00:00:00Z",
                ),
                "",
                artifact(
                    "acme/docs", [("site/templates/a.html", 2, "vue-v-html"), ("site/page.js", 8, "dom-inner-html")]
                ),
                artifact("someone/else", [("x.py", 1, "jinja2-template")]),
            ]
        )
        + "\n"
    )
    code, out, err = cli(*setup.argv("--artifacts", setup.artifacts, "--exceptions", exceptions), env=setup.env())
    assert code == 2, out
    report = setup.report_json()
    assert [(h.repo, h.path, h.line, h.pattern, h.severity) for h in report.unregistered_hits] == [
        ("acme/web", "legacy/render.py", 5, "jinja2-from-string", "critical"),
        ("acme/web", "old/view.py", 7, "dom-inner-html", "high"),
        ("someone/else", "x.py", 1, "jinja2-template", "high"),
        ("acme/web", "src/app.py", 12, "unknown-pattern-id", "medium"),
        ("acme/docs", "site/page.js", 8, "dom-inner-html", "low"),  # the registry's severity override
    ]
    hits = report.checks["unregistered_hits"].detail
    assert hits.startswith(
        "5 unregistered hit(s) in 3 repositor(ies) from 3 artifact(s); 1 covered by live exceptions; "
        "1 matched only expired exceptions (1 critical, 2 high, 1 medium, 1 low"
    )
    assert report.checks["exceptions"].status == "warn"
    assert (
        f"1 expired and ignored: acme/web old/ (expired {today - timedelta(days=1)}, approver security-lead)"
        in report.checks["exceptions"].detail
    )
    assert report.checks["unknown_consumers"].detail.endswith("someone/else")
    assert "tw-gates audit: error: unregistered_hits: 5 unregistered hit(s)" in err


def test_hits_inside_code_paths_only_is_green(setup, cli):
    setup.protect()
    setup.artifacts.write_text(artifact("acme/docs", [("site/templates/deep/x.html", 2, "vue-v-html")]) + "\n")
    assert cli(*setup.argv("--artifacts", setup.artifacts), env=setup.env())[0] == 0
    assert setup.report_json().unregistered_hits == []


def test_runner_gets_summary_outputs_and_annotations(setup, cli, tmp_path):
    setup.protect()
    setup.artifacts.write_text(
        artifact("acme/web", [("src/a.py", 3, "jinja2-from-string"), ("src/b.js", 4, "jquery-html-sink")]) + "\n"
    )
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    summary.touch()
    outputs.touch()
    code, out, _ = cli(
        *setup.argv("--artifacts", setup.artifacts),
        env=setup.env(
            GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(outputs), GITHUB_RUN_ID="77"
        ),
    )
    assert code == 2
    assert (
        "::error title=tw-gates audit%3A unregistered hit,file=src/a.py,line=3::acme/web: renderer pattern "
        "jinja2-from-string (critical)" in out
    )
    assert "::warning title=tw-gates audit%3A unregistered hit,file=src/b.js,line=4::" in out
    text = summary.read_text()
    assert (
        "### tw-gates audit (G3): exit 2" in text
        and "| critical | acme/web | src/a.py | 3 | jinja2-from-string |" in text
    )
    written = outputs.read_text()
    assert "exit-code" in written and "unregistered" in written
    assert setup.report_json().audit_id == "gh-77-1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"not": "an artifact"}\n', "accepted.jsonl:1: not a consumer artifact"),
        ("not json\n", "accepted.jsonl:1: not a consumer artifact"),
    ],
)
def test_corrupt_accepted_artifacts_are_exit_1(setup, cli, content, message):
    setup.protect()
    setup.artifacts.write_text(content)
    code, _, err = cli(*setup.argv("--artifacts", setup.artifacts), env=setup.env())
    assert code == 1 and message in err


def test_missing_inputs_are_exit_1(setup, cli):
    code, _, err = cli(*setup.argv("--artifacts", setup.root / "none.jsonl"), env=setup.env())
    assert code == 1 and "accepted artifacts not found" in err
    code, _, err = cli("audit", "--registry", setup.root / "none.yml", "--report", setup.report, env=setup.env())
    assert code == 1 and "registry not found" in err
    bad = write_exceptions(setup, "  - repo: acme/web\n    path: x\n")
    code, _, err = cli(*setup.argv("--exceptions", bad), env=setup.env())
    assert code == 1 and "invalid exceptions file" in err and "approver" in err


# --------------------------------------------------------------------------- globs


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("app/rendering/**", "app/rendering/a/b.py", True),
        ("app/rendering/**", "app/renderingx/a.py", False),
        ("app/rendering", "app/rendering/a.py", True),  # a folder covers what is below it
        ("app/*.py", "app/a.py", True),
        ("app/*.py", "app/sub/a.py", False),
        ("**/templates/*.html", "templates/a.html", True),
        ("**/templates/*.html", "x/y/templates/a.html", True),
        ("*.j2", "deep/down/mail.j2", True),
        ("file?.py", "file1.py", True),
        ("file[!0-9].py", "file1.py", False),
        ("file[!0-9].py", "fileA.py", True),
        ("src/", "src/x/y.js", True),
    ],
)
def test_glob_semantics(glob, path, matches):
    assert bool(compile_glob(glob).fullmatch(path)) is matches
    assert (path_matches(path, [glob]) == glob) is matches


def test_shipped_exceptions_file_and_its_example_are_valid(repo_root):
    import yaml

    from tw_gates.schemas.exceptions import AuditExceptions, load_exceptions

    model, _ = load_exceptions(repo_root / "audit_exceptions.yml")
    assert model.exceptions == []
    example = "\n".join(
        line[4:] for line in (repo_root / "audit_exceptions.yml").read_text().splitlines() if line.startswith("#   ")
    )
    entry = AuditExceptions.model_validate({"exceptions": yaml.safe_load(example)}).exceptions[0]
    assert entry.approver == "security-lead" and path_matches("legacy/emails/a/b.html", [entry.path])


def test_folder_of_shards_is_merged_newest_per_repository(setup, cli):
    setup.protect()
    shards = setup.root / "shards"
    (shards / "b").mkdir(parents=True)
    (shards / "a.jsonl").write_text(
        artifact("acme/web", [("src/old.py", 1, "jinja2-template")], "2026-03-01T00:00:00Z") + "\n"
    )
    (shards / "b" / "c.jsonl").write_text(
        artifact("acme/web", [("src/new.py", 2, "jinja2-template")], "2026-03-05T00:00:00Z") + "\n"
    )
    (shards / "notes.txt").write_text("not a shard")
    assert cli(*setup.argv("--artifacts", shards), env=setup.env())[0] == 2
    assert [h.path for h in setup.report_json().unregistered_hits] == ["src/new.py"]
    (setup.root / "empty").mkdir()
    code, _, err = cli(*setup.argv("--artifacts", setup.root / "empty"), env=setup.env())
    assert code == 1 and "no *.jsonl file in" in err
