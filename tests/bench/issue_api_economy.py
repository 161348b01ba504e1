"""API economy of ``tw-gates file-issues`` (R1), beside a naive filer (reported, not a timed test).

For 1, 10, 11, 100 and 1,000 repositories with findings (two findings each), against
the local GitHub emulator over real HTTP, three runs in a row:

* first run (empty tracker),
* identical rerun (same audit report),
* one repository changed (one of its findings moved a line).

For each run: HTTP requests the emulator answered, and writes that changed state
(a 2xx POST/PATCH/PUT/DELETE; the label probe's 422 changes nothing and is counted
as a call only). ``ours`` is file-issues with the default cap (10: more repositories
-> one digest) and, for scale, with the cap lifted (one issue per repository,
``--max-issues 1000``). The counts come from the emulator's request log and are
cross-checked against ``GitHubClient.calls``.

The naive filer (implemented here only) is what the marker and the single listing
replace: one issue per repository, found with the search API (one query per
repository); all open issues listed (30 a page, no label filter) to find the ones
to close; the body rewritten and commented on every run. The search API has its own
quota (30 requests a minute) and an index that lags: the bench lifts that quota so
the counts can be compared, and reports separately how many duplicates a naive
rerun files when the index lags by a minute.

Targets (issue R1): identical rerun <= 2 + ceil(open tw-gates issues / 100) calls and
no write; first run <= one write per issue filed plus its label.

Run:  python tests/bench/issue_api_economy.py [--sizes 1,10,11,100,1000] [--json out.json]"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import github

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.emulator import GitHubEmulator  # noqa: E402
from tests.emulator.fixtures import pygithub_client  # noqa: E402
from tw_gates.core import metrics  # noqa: E402
from tw_gates.core.settings import load_settings  # noqa: E402
from tw_gates.issues.file_issues import FileIssuesSettings, file_issues  # noqa: E402

CENTRAL = "sec/central"
TOKEN = "ghs_" + "B" * 36
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def audit(folder: Path, repos: int, changed: bool = False) -> Path:
    hits = []
    for n in range(repos):
        for k in (1, 2):
            line = 100 + k + (1 if changed and n == 0 and k == 1 else 0)
            hits.append(
                {
                    "repo": f"consumers/app-{n:04d}",
                    "path": f"src/views/page_{k}.py",
                    "line": line,
                    "pattern": "jinja2-from-string",
                    "severity": ("high", "medium", "low")[n % 3],
                }
            )
    path = folder / "audit.json"
    path.write_text(
        json.dumps(
            {
                "audit_id": f"bench-{repos}",
                "generated_at": "2026-03-01T00:00:00Z",
                "exit_code": 2,
                "checks": {},
                "unregistered_hits": hits,
            }
        )
    )
    return path


def measure(emu: GitHubEmulator, run: Callable[[], int | None]) -> dict:
    emu.clear_requests()
    started = time.perf_counter()
    client_calls = run()
    seconds = time.perf_counter() - started
    log = emu.requests
    writes = sum(1 for r in log if r.method in WRITES and 200 <= r.status < 300)
    if client_calls is not None:
        assert client_calls == len(log), (client_calls, len(log))
    return {
        "calls": len(log),
        "writes": writes,
        "search": sum(1 for r in log if r.path.startswith("/search/")),
        "seconds": round(seconds, 2),
    }


def open_tracked(emu: GitHubEmulator) -> int:
    return sum(1 for i in emu.issues(CENTRAL) if i["state"] == "open")


# ---------------------------------------------------------------------------- ours


def ours(emu: GitHubEmulator, folder: Path, repos: int, cap: int) -> list[dict]:
    rows = []
    for scenario, changed in (("first run", False), ("identical rerun", False), ("one repo changed", True)):
        report = audit(folder, repos, changed)
        settings = load_settings(
            FileIssuesSettings,
            {
                "audit": report,
                "central_repo": CENTRAL,
                "max_issues": cap,
                "fallback_dir": folder / "fallback",
                "github_token": TOKEN,
                "github_api_url": emu.url,
            },
        )
        before = open_tracked(emu)

        def run() -> int:
            result = file_issues(settings, echo=lambda line: None)
            assert result.exit_code == 0, result.message
            return result.api_calls

        row = measure(emu, run)
        row.update(scenario=scenario, open_before=before, issues_after=open_tracked(emu))
        if scenario == "identical rerun":
            row["target"] = 2 + math.ceil(before / 100)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- naive


def naive_run(gh: github.Github, folder: Path, repos: int, changed: bool) -> None:
    """One issue per repository, found by search; stale ones found by listing everything."""
    central = gh.get_repo(CENTRAL)
    wanted: dict[str, str] = {}
    for n in range(repos):
        lines = [100 + k + (1 if changed and n == 0 and k == 1 else 0) for k in (1, 2)]
        wanted[f"consumers/app-{n:04d}"] = "\n".join(
            f"- src/views/page_{k}.py:{line}" for k, line in zip((1, 2), lines)
        )
    listed = list(central.get_issues(state="open"))  # every open issue, 30 a page
    for repo, body in wanted.items():
        found = next(iter(gh.search_issues(f'repo:{CENTRAL} is:issue is:open label:tw-gates in:title "{repo}"')), None)
        if found is None:
            central.create_issue(title=f"Unregistered renderer use in {repo}", body=body, labels=["tw-gates"])
        else:
            found.edit(body=body)
            found.create_comment("Findings still present.")
    for issue in listed:
        repo = issue.title.rsplit(" ", 1)[-1]
        if repo not in wanted:
            issue.create_comment("Resolved.")
            issue.edit(state="closed")


def naive(emu: GitHubEmulator, folder: Path, repos: int) -> list[dict]:
    gh = pygithub_client(emu, TOKEN, per_page=30, lazy=True)
    rows = []
    for scenario, changed in (("first run", False), ("identical rerun", False), ("one repo changed", True)):
        before = open_tracked(emu)
        row = measure(emu, lambda: naive_run(gh, folder, repos, changed))
        row.update(scenario=scenario, open_before=before, issues_after=open_tracked(emu))
        rows.append(row)
    return rows


def naive_duplicates_with_index_lag(folder: Path, repos: int) -> int:
    """Issues a naive rerun files twice when the search index lags by a minute."""
    with GitHubEmulator() as emu:
        prepare(emu)
        emu.search_lag_seconds = 60
        gh = pygithub_client(emu, TOKEN, per_page=30, lazy=True)
        naive_run(gh, folder, repos, False)
        naive_run(gh, folder, repos, False)
        return open_tracked(emu) - repos


def prepare(emu: GitHubEmulator) -> None:
    emu.add_repo(CENTRAL)
    emu.add_token(TOKEN, kind="app", repo_permissions={CENTRAL: {"issues": "write"}})
    # Room for the naive filer's searches (GitHub: 30 a minute) and for the 1,000-repository runs.
    emu.set_rate_limit(limit=1_000_000, resource="search")
    emu.set_rate_limit(limit=1_000_000, resource="core")


# ---------------------------------------------------------------------------- report


def table(results: list[dict]) -> str:
    head = (
        "| repos | run | ours (cap 10): calls / writes | ours (cap lifted): calls / writes | target (rerun) "
        "| naive: calls / writes (search) |"
    )
    lines = [head, "|---:|---|---:|---:|---:|---:|"]
    for entry in results:
        for capped, lifted, naive_row in zip(entry["ours"], entry["ours_per_repo"], entry["naive"]):
            target = f"≤ {capped['target']} / ≤ {lifted['target']}" if "target" in capped else ""
            lines.append(
                f"| {entry['repos']} | {capped['scenario']} | {capped['calls']} / {capped['writes']} | "
                f"{lifted['calls']} / {lifted['writes']} | {target} | "
                f"{naive_row['calls']} / {naive_row['writes']} ({naive_row['search']}) |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,11,100,1000")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        metrics.configure(metrics.MetricsSink(folder / "metrics"))
        for repos in sizes:
            entry = {"repos": repos}
            for name, run in (
                ("ours", lambda e: ours(e, folder, repos, 10)),
                ("ours_per_repo", lambda e: ours(e, folder, repos, 1000)),
                ("naive", lambda e: naive(e, folder, repos)),
            ):
                with GitHubEmulator() as emu:
                    prepare(emu)
                    entry[name] = run(emu)
            entry["naive_duplicates_with_lag"] = naive_duplicates_with_index_lag(folder, min(repos, 100))
            results.append(entry)
            print(f"{repos} repositories measured", file=sys.stderr, flush=True)
    print(table(results))
    print()
    for entry in results:
        print(
            f"- {entry['repos']} repositories: a naive rerun within the search index lag (60 s) filed "
            f"{entry['naive_duplicates_with_lag']} duplicate issue(s)"
            + (" (measured on 100)" if entry["repos"] > 100 else "")
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
