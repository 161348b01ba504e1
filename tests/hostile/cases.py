"""The table of hostile inputs: for every command that reads a file or an
environment variable, the classics (empty, huge, binary, deep nesting,
symlink, FIFO, wrong encoding, control characters, NUL) and the attacks of
issue 14 (alias bombs, links to /proc/self/environ, Markdown in paths,
out-of-range numbers), each with the exit code and the reason the one error
line must give.

Exit codes (the contract): 0 pass, 1 usage/internal error, 2 rejected."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.hostile.harness import PLANTED, Case

# ----------------------------------------------------------------------------- contents

BILLION_LAUGHS = (
    "\n".join(
        ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        + [f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
        + ["on: push", "jobs:", "  x:", "    runs-on: ubuntu-latest", "    steps:", "      - run: echo", "        env:"]
        + ["          BOMB: *i"]
    )
    + "\n"
)
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "x: " + "[" * 100_000 + "]" * 100_000 + "\n"
BINARY = bytes(range(256)) * 16
UTF16 = '{"schema_version": "1.0"}'.encode("utf-16")
CONTROL = '{"a": "\x1b[31mred\x1b[0m \x07 \u202e"}'


def write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return setup


def huge(name: str, size: int = 3 * 1024**3) -> Callable[[Path], None]:
    """A sparse file of ``size`` bytes: costs no disk, must cost no memory."""

    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(size)

    return setup


def secret_file(tmp: Path) -> Path:
    path = tmp.parent / f"{tmp.name}-outside" / "secret.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"token={PLANTED}\naws_access_key_id=AKIAHOSTILE000000000\n")
    return path


def link(name: str, target: str = "secret") -> Callable[[Path], None]:
    """``name`` is a symbolic link to a secret outside the folder (or to /proc/self/environ)."""

    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(secret_file(tmp) if target == "secret" else target)

    return setup


def fifo(name: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)

    return setup


def folder(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).mkdir(parents=True, exist_ok=True)


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for step in setups:
            step(tmp)

    return setup


def git_repo(tmp: Path) -> None:
    """A checkout with a workflows folder (G1/G4/G5 read it)."""
    (tmp / ".github" / "workflows").mkdir(parents=True, exist_ok=True)


WF = ".github/workflows"
REGISTRY = write("consumer_registry.yml", "consumers: []\n")
RULES = "prometheus/rules/audit_rules.yml"

# ----------------------------------------------------------------------------- the table

CASES: list[Case] = []


def case(*args, **kwargs) -> None:
    CASES.append(Case(*args, **kwargs))


# -- G1 verify-nets / G4 hmac-policy: every workflow of a repository (YAML from a pull request)
VERDICT = {"verify-nets": "0/5 safety nets verified", "hmac-policy": "POLICY_REQUIRE_HMAC is enforced nowhere"}
for command in ("verify-nets", "hmac-policy"):
    argv = (command, "--repo-dir", "{tmp}")
    for name, setup, detail in (
        ("alias-bomb", write(f"{WF}/bomb.yml", BILLION_LAUGHS), "aliases expand to more than 200000 nodes"),
        ("deep-yaml", write(f"{WF}/deep.yml", DEEP_YAML), "nested deeper than 200 levels"),
        ("huge-workflow", huge(f"{WF}/huge.yml"), "larger than the limit of 1048576 bytes"),
        ("binary-workflow", write(f"{WF}/bin.yml", BINARY), "not UTF-8 text"),
        ("utf16-workflow", write(f"{WF}/u16.yml", UTF16), "not UTF-8 text"),
        ("link-to-environ", link(f"{WF}/environ.yml", "/proc/self/environ"), "is a symbolic link: not followed"),
        ("link-to-secret", link(f"{WF}/secret.yml"), "is a symbolic link: not followed"),
        ("fifo-workflow", fifo(f"{WF}/fifo.yml"), "is a FIFO, not a regular file"),
        (
            "workflows-folder-is-a-link",
            lambda t: (t / ".github").mkdir() or (t / WF).symlink_to(secret_file(t).parent),
            ".github/workflows is a symbolic link: not followed",
        ),
        ("empty-workflow", write(f"{WF}/empty.yml", ""), "not a workflow"),
    ):
        case(f"{command}/{name}", argv, 2, VERDICT[command], setup=setup, detail=detail)
    case(f"{command}/missing-repo", (command, "--repo-dir", "{tmp}/nope"), 1, "repository folder not found")
    case(
        f"{command}/repo-is-a-file",
        (command, "--repo-dir", "{tmp}/f"),
        1,
        "repository folder not found",
        setup=write("f", "x"),
    )

# -- G5 telemetry-check: the rules file
tc = ("telemetry-check", "--repo-dir", "{tmp}")
case("telemetry-check/rules-alias-bomb", tc, 2, "failed: rules", setup=write(RULES, BILLION_LAUGHS))
case("telemetry-check/rules-link", tc, 2, "failed: rules", setup=link(RULES))
case("telemetry-check/rules-fifo", tc, 2, "failed: rules", setup=fifo(RULES))
case("telemetry-check/rules-huge", tc, 2, "failed: rules", setup=huge(RULES))
case("telemetry-check/rules-binary", tc, 2, "failed: rules", setup=write(RULES, BINARY))

# -- G2 behavioral: JUnit XML
bh = ("behavioral", "--junit", "{tmp}/results")
case("behavioral/empty-xml", bh, 1, "not JUnit XML", setup=write("results/r.xml", ""))
case("behavioral/binary-xml", bh, 1, "not UTF-8", setup=write("results/r.xml", BINARY))
case("behavioral/huge-xml", bh, 1, "larger than the limit", setup=huge("results/r.xml"))
case("behavioral/link-in-folder", bh, 1, "no *.xml file", setup=link("results/r.xml"))
case("behavioral/fifo-in-folder", bh, 1, "no *.xml file", setup=fifo("results/r.xml"))
case(
    "behavioral/fifo-named",
    ("behavioral", "--junit", "{tmp}/r.xml"),
    1,
    "is a FIFO, not a regular file",
    setup=fifo("r.xml"),
)
case(
    "behavioral/xml-entity-bomb",
    bh,
    1,
    "limit on input amplification factor",
    setup=write(
        "results/r.xml",
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(8))
        + ']><testsuite name="&i;"/>',
    ),
)
case("behavioral/expect-out-of-range", ("behavioral", "--junit", "{tmp}/r.xml", "--expect", "9" * 40), 1, "expect")

# -- G3 audit: registry, exceptions, artifacts (JSONL or a folder of shards), baseline, patterns
au = ("audit", "--registry", "{tmp}/registry.yml", "--report", "{tmp}/report.json")
case("audit/registry-alias-bomb", au, 1, "not valid YAML", setup=write("registry.yml", BILLION_LAUGHS))
case("audit/registry-deep", au, 1, "registry", setup=write("registry.yml", DEEP_YAML))
case("audit/registry-huge", au, 1, "larger than the limit", setup=huge("registry.yml"))
case("audit/registry-binary", au, 1, "not UTF-8", setup=write("registry.yml", BINARY))
case("audit/registry-utf16", au, 1, "not UTF-8", setup=write("registry.yml", UTF16))
case("audit/registry-fifo", au, 1, "FIFO", setup=fifo("registry.yml"))
case("audit/registry-dev-zero", ("audit", "--registry", "/dev/zero"), 1, "character device")
case("audit/registry-directory", au, 1, "directory", setup=folder("registry.yml"))
case("audit/registry-nul-in-path", ("audit", "--registry", "{tmp}/reg\x00.yml"), 1, "registry")
case(
    "audit/registry-control-chars",
    au,
    1,
    "unacceptable character #x001b",
    setup=write("registry.yml", 'consumers:\n  - repo: "\x1b[31m"\n'),
)
case(
    "audit/artifacts-folder-with-links",
    ("audit", "--artifacts", "{tmp}/shards", "--report", "{tmp}/report.json"),
    1,
    "no *.jsonl file",
    setup=both(
        write("consumer_registry.yml", "consumers: []\n"),
        link("shards/a.jsonl"),
        link("shards/b.jsonl", "/proc/self/environ"),
        fifo("shards/c.jsonl"),
    ),
)
case(
    "audit/artifacts-deep-json",
    ("audit", "--artifacts", "{tmp}/a.jsonl", "--report", "{tmp}/report.json"),
    1,
    "a.jsonl:1: not a consumer artifact",
    setup=both(REGISTRY, write("a.jsonl", DEEP_JSON + "\n")),
)
case(
    "audit/exceptions-alias-bomb",
    ("audit", "--exceptions", "{tmp}/ex.yml", "--report", "{tmp}/report.json"),
    1,
    "aliases expand",
    setup=both(REGISTRY, write("ex.yml", BILLION_LAUGHS)),
)

# -- S1 ingest (the ingest room applies no-follow reading and safe quarantine)
ig = ("ingest", "--artifact", "{tmp}/in", "--quarantine", "{tmp}/q", "--out", "{tmp}/accepted.jsonl")
case("ingest/link-to-environ", ig, 2, "rejected", setup=link("in/a.json", "/proc/self/environ"))
case("ingest/link-to-secret", ig, 2, "rejected", setup=link("in/a.json"))
case("ingest/fifo", ig, 2, "rejected", setup=fifo("in/a.json"))
case("ingest/deep-json", ig, 2, "rejected", setup=write("in/a.json", DEEP_JSON))
case("ingest/binary", ig, 2, "rejected", setup=write("in/a.json", BINARY))
case(
    "ingest/max-age-overflow", (*ig, "--max-age", "99999999999999d"), 1, "out of range", setup=write("in/a.json", "{}")
)
case(
    "ingest/max-bytes-overflow",
    (*ig, "--max-bytes", "9" * 40 + "TiB"),
    1,
    "out of range",
    setup=write("in/a.json", "{}"),
)
case(
    "ingest/keys-not-json",
    (*ig, "--require-hmac"),
    1,
    "TW_HMAC_KEYS",
    env={"TW_HMAC_KEYS": "{\x1b[31mnot json"},
    setup=write("in/a.json", "{}"),
)

# -- S2/R1 file-issues: the audit report
fi = ("file-issues", "--audit", "{tmp}/report.json", "--central-repo", "acme/central", "--dry-run")
case("file-issues/report-deep", fi, 1, "report", setup=write("report.json", DEEP_JSON))
case("file-issues/report-binary", fi, 1, "report", setup=write("report.json", BINARY))
case("file-issues/report-huge", fi, 1, "larger than the limit", setup=huge("report.json"))
case("file-issues/report-fifo", fi, 1, "FIFO", setup=fifo("report.json"))
case(
    "file-issues/max-issues-env",
    fi,
    1,
    "MAX_ISSUES_PER_RUN",
    env={"MAX_ISSUES_PER_RUN": "1e999"},
    setup=write("report.json", "{}"),
)
case(
    "file-issues/deadline-overflow",
    (*fi, "--deadline", "99999999999999d"),
    1,
    "out of range",
    setup=write("report.json", "{}"),
)

# -- canary: metrics, baseline, thresholds
cn = ("canary", "--baseline", "{tmp}/b.json", "--metrics", "{tmp}/m.json", "--dry-run")
CANARY_BASELINE = write("b.json", '{"latency_p50_ms": 10, "latency_p95_ms": 20}')
case("canary/baseline-deep", cn, 1, "baseline", setup=both(write("b.json", DEEP_JSON), write("m.json", "{}")))
case("canary/metrics-fifo", cn, 1, "FIFO", setup=both(CANARY_BASELINE, fifo("m.json")))
case("canary/metrics-link", cn, 1, "not valid JSON", setup=both(CANARY_BASELINE, link("m.json")))
case(
    "canary/thresholds-bomb",
    (*cn, "--thresholds", "{tmp}/t.yml"),
    1,
    "not valid YAML",
    setup=both(CANARY_BASELINE, write("m.json", "{}"), write("t.yml", BILLION_LAUGHS)),
)
case(
    "canary/window-overflow",
    (*cn, "--window", "99999999999999d"),
    1,
    "out of range",
    setup=both(CANARY_BASELINE, write("m.json", "{}")),
)
case(
    "canary/window-huge-in-range",
    (*cn, "--window", "36500d", "--interval", "1m"),
    1,
    "at most 600 in a window",
    setup=both(CANARY_BASELINE, write("m.json", "{}")),
    timeout=20,
)

# -- baseline verify, phase, evidence, render, self-audit, collect
case(
    "baseline/verify-deep",
    ("baseline", "verify", "{tmp}/b.json"),
    6,
    "nested too deeply",
    setup=write("b.json", DEEP_JSON),
)
case("baseline/verify-fifo", ("baseline", "verify", "{tmp}/b.json"), 6, "is a FIFO", setup=fifo("b.json"))
case(
    "baseline/timeout-overflow",
    ("baseline", "capture", "--out", "{tmp}/c.json", "--timeout", "1e308"),
    1,
    "out of range",
)
case(
    "phase/verify-artifact-deep",
    ("phase", "verify", "1", "--artifact", "{tmp}/a.json"),
    2,
    "artifact",
    setup=write("a.json", DEEP_JSON),
)
case(
    "phase/verify-artifact-link",
    ("phase", "verify", "1", "--artifact", "{tmp}/a.json"),
    2,
    "Cannot start Phase 1",
    setup=link("a.json"),
)
case(
    "evidence/add-fifo",
    ("evidence", "add", "--id", "E1", "--phase", "0", "--file", "f", "--lines", "1-1", "--description", "d"),
    1,
    "is a FIFO",
    setup=fifo("f"),
    timeout=10,
)
case(
    "evidence/add-link",
    ("evidence", "add", "--id", "E1", "--phase", "0", "--file", "f", "--lines", "1-2", "--description", "d"),
    1,
    "is a symbolic link: not followed",
    setup=link("f"),
)
case(
    "evidence/verify-log-deep",
    ("evidence", "verify"),
    2,
    "do not verify",
    setup=write("evidence_blocks.jsonl", DEEP_JSON + "\n"),
)
case(
    "render/values-bomb",
    ("render", "{tmp}/t.md", "--values", "{tmp}/v.yml"),
    1,
    "not valid YAML",
    setup=both(write("t.md", "{{A}}"), write("v.yml", BILLION_LAUGHS)),
)
case(
    "render/template-fifo",
    ("render", "{tmp}/t.md", "--values", "{tmp}/v.yml"),
    1,
    "FIFO",
    setup=both(fifo("t.md"), write("v.yml", "A: 1")),
)
case(
    "render/values-utf16",
    ("render", "{tmp}/t.md", "--values", "{tmp}/v.yml"),
    1,
    "not UTF-8",
    setup=both(write("t.md", "{{A}}"), write("v.yml", UTF16)),
)
sa = (
    "self-audit",
    "--repo-dir",
    "{tmp}/repo",
    "--out",
    "{tmp}/artifact.json",
    "--repo",
    "acme/web",
    "--commit",
    "a" * 40,
    "--branch",
    "main",
)
case("self-audit/link-to-environ", sa, 0, "", setup=link("repo/src/view.py", "/proc/self/environ"))
case("self-audit/link-to-secret", sa, 0, "", setup=link("repo/src/view.py"))
case("self-audit/fifo-in-tree", sa, 0, "", setup=fifo("repo/src/view.py"), timeout=10)
case(
    "self-audit/patterns-bomb",
    (*sa, "--patterns", "{tmp}/p.yml"),
    1,
    "not valid YAML",
    setup=both(folder("repo"), write("p.yml", BILLION_LAUGHS)),
)
case(
    "collect/registry-bomb",
    ("collect", "--registry", "{tmp}/r.yml", "--out", "{tmp}/out"),
    1,
    "not valid YAML",
    setup=write("r.yml", BILLION_LAUGHS),
)

# -- environment variables every command reads
case("env/metrics-dir-is-a-file", ("schema",), 0, "", env={"TW_METRICS_DIR": "{tmp}/f"}, setup=write("f", "x"))
case(
    "env/pushgateway-with-credentials",
    ("hmac-policy", "--repo-dir", "{tmp}"),
    2,
    "POLICY_REQUIRE_HMAC is enforced nowhere",
    env={"TW_PUSHGATEWAY_URL": "http://user:Pushgateway-Passw0rd@127.0.0.1:9/"},
    setup=git_repo,
)
case(
    "env/hmac-keys-control-chars",
    (*ig, "--require-hmac"),
    1,
    "TW_HMAC_KEYS",
    env={"TW_HMAC_KEYS": "\x1b[31m{"},
    setup=write("in/a.json", "{}"),
)
case(
    "env/hmac-keys-huge",
    (*ig, "--require-hmac"),
    1,
    "TW_HMAC_KEYS",
    env={"TW_HMAC_KEYS": "{" + '"k": "v",' * 200_000},
    setup=write("in/a.json", "{}"),
)
case("env/runner-os-windows", ("audit",), 2, "Linux only", env={"RUNNER_OS": "Windows"})
case(
    "env/policy-require-hmac-garbage",
    ig,
    1,
    "POLICY_REQUIRE_HMAC",
    env={"POLICY_REQUIRE_HMAC": "maybe\x1b"},
    setup=write("in/a.json", "{}"),
)

# Markdown in consumer text reaches the job summary escaped (see test_summaries_escape_consumer_text).
MARKDOWN_PATH = '<img src="https://evil.example/p.gif"> [click](http://evil.example) @admins'


def artifact_line(path: str) -> str:
    return json.dumps(
        {
            "schema_version": "1.0",
            "repo": "acme/web",
            "commit": "a" * 40,
            "branch": "main",
            "generated_at": "2026-01-01T00:00:00Z",
            "tool_version": "0.1.0",
            "hits": [{"path": path, "line": 3, "pattern": "jinja2-from-string"}],
        }
    )
