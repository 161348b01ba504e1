"""API economy and wall time of ``tw-gates file-issues`` (R1) with writes paced as GitHub
asks, beside a naive filer (reported, not a timed test).

For 10, 100 and 1,000 repositories with findings (two findings each; ``--sizes``),
against the local GitHub emulator over real HTTP (GitHub's secondary limits on: 80
content-generating requests a minute, 500 an hour), three runs in a row:

* first run (empty tracker),
* identical rerun (same audit report),
* one repository changed (one of its findings moved a line).

For each run: HTTP requests the emulator answered, writes that changed state (a 2xx
POST/PATCH/PUT/DELETE; the label probe's 422 changes nothing and counts as a call only),
and wall time. ``ours`` is file-issues as shipped: writes >= 1 s apart and within
GitHub's limits, the default 15-minute deadline; with the default cap (10: more
repositories -> one digest) and with the cap lifted (``--max-issues 1000``). When the
paced writes of one issue per repository cannot end before the deadline, the run files
one digest instead; the table says so and the script prints how long the paced writes
would have taken. The counts come from the emulator's request log and are
cross-checked against ``GitHubClient.calls``.

The naive filer (implemented here only; ``--naive``) is what the marker and the single
listing replace: one issue per repository, found with the search API (one query per
repository); all open issues listed (30 a page, no label filter) to find the ones to
close; the body rewritten and commented on every run. It is not paced, so it runs with
the emulator's secondary limits and search quota lifted, for its counts only; it also
reports how many duplicates a naive rerun files when the search index lags by a minute.

Targets (issue R1): identical rerun <= 2 + ceil(open tw-gates issues / 100) calls and no
write; first run <= one write per issue filed plus its label.

Run:  python tests/bench/issue_api_economy.py [--sizes 10,100,1000] [--naive] [--json out.json]
Numbers depend on the machine's load: the script prints it (``os.getloadavg``)."""

from __future__ import annotations

import argparse
import json
import math
import os
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
from tw_gates.core.github_client import WritePacer  # noqa: E402
from tw_gates.core.settings import load_settings  # noqa: E402
from tw_gates.issues.file_issues import FileIssuesSettings, file_issues  # noqa: E402

CENTRAL = "sec/central"
TOKEN = "ghs_" + "B" * 36
WRITES = ("POST", "PATCH", "PUT", "DELETE")
SCENARIOS = (("first run", False), ("identical rerun", False), ("one repo changed", True))


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
        "refused": sum(1 for r in log if r.status in (403, 429)),
        "seconds": round(seconds, 1),
    }


def open_tracked(emu: GitHubEmulator) -> int:
    return sum(1 for i in emu.issues(CENTRAL) if i["state"] == "open")


# ---------------------------------------------------------------------------- ours


def ours(emu: GitHubEmulator, folder: Path, repos: int, cap: int) -> list[dict]:
    rows = []
    for scenario, changed in SCENARIOS:
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
        mode = {}

        def run(settings=settings, mode=mode) -> int:
            result = file_issues(settings, echo=lambda line: None)
            assert result.exit_code == 0, result.message
            mode["mode"] = result.mode
            return result.api_calls

        row = measure(emu, run)
        row.update(scenario=scenario, open_before=before, issues_after=open_tracked(emu), mode=mode["mode"])
        if scenario == "identical rerun":
            row["target"] = 2 + math.ceil(before / 100)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- naive


def naive_run(gh: github.Github, repos: int, changed: bool) -> None:
    """One issue per repository, found by search; stale ones found by listing everything."""
    central = gh.get_repo(CENTRAL)
    wanted: dict[str, str] = {}
    for n in range(repos):
        lines = [100 + k + (1 if changed and n == 0 and k == 1 else 0) for k in (1, 2)]
        wanted[f"consumers/app-{n:04d}"] = "\n".join(
            f"- src/views/page_{k}.py:{line}" for k, line in zip((1, 2), lines, strict=True)
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


def naive(emu: GitHubEmulator, repos: int) -> list[dict]:
    unlimited(emu)
    gh = pygithub_client(emu, TOKEN, per_page=30, lazy=True)
    rows = []
    for scenario, changed in SCENARIOS:
        before = open_tracked(emu)
        row = measure(emu, lambda changed=changed: naive_run(gh, repos, changed))
        row.update(scenario=scenario, open_before=before, issues_after=open_tracked(emu))
        rows.append(row)
    return rows


def naive_duplicates_with_index_lag(repos: int) -> int:
    """Issues a naive rerun files twice when the search index lags by a minute."""
    with GitHubEmulator() as emu:
        prepare(emu)
        unlimited(emu)
        emu.search_lag_seconds = 60
        gh = pygithub_client(emu, TOKEN, per_page=30, lazy=True)
        naive_run(gh, repos, False)
        naive_run(gh, repos, False)
        return open_tracked(emu) - repos


def prepare(emu: GitHubEmulator) -> None:
    emu.add_repo(CENTRAL)
    emu.add_token(TOKEN, kind="app", repo_permissions={CENTRAL: {"issues": "write"}})
    # Room in the primary quota for the 1,000-repository runs; secondary limits stay GitHub's.
    emu.set_rate_limit(limit=1_000_000, resource="core")


def unlimited(emu: GitHubEmulator) -> None:
    """For the naive filer's counts: GitHub would throttle its searches (30 a minute) and bursts."""
    emu.set_rate_limit(limit=1_000_000, resource="search")
    emu.set_secondary_limits(content_per_minute=10**6, content_per_hour=10**6, points_per_minute=10**7)


# ---------------------------------------------------------------------------- report


def _cell(row: dict) -> str:
    digest = " (digest)" if row.get("mode") == "digest" else ""
    return f"{row['calls']} / {row['writes']} / {row['seconds']:g} s{digest}"


def table(results: list[dict]) -> str:
    head = (
        "| repos | run | cap 10: calls / writes / wall | cap lifted: calls / writes / wall "
        "| target (rerun) | naive, unpaced: calls / writes (search) |"
    )
    lines = [head, "|---:|---|---:|---:|---:|---:|"]
    for entry in results:
        naive_rows = entry.get("naive") or [None] * len(entry["ours"])
        for capped, lifted, naive_row in zip(entry["ours"], entry["ours_per_repo"], naive_rows, strict=True):
            target = f"≤ {capped['target']} / ≤ {lifted['target']}" if "target" in capped else ""
            naive_cell = f"{naive_row['calls']} / {naive_row['writes']} ({naive_row['search']})" if naive_row else ""
            lines.append(
                f"| {entry['repos']} | {capped['scenario']} | {_cell(capped)} | {_cell(lifted)} | {target} | "
                f"{naive_cell} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--naive", action="store_true", help="also run the naive filer (unpaced)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        metrics.configure(metrics.MetricsSink(folder / "metrics"))
        for repos in sizes:
            entry: dict = {"repos": repos, "paced_seconds_one_per_repo": round(WritePacer().seconds_for(repos + 1))}
            runs: list[tuple[str, Callable[[GitHubEmulator], list[dict]]]] = [
                ("ours", lambda e, repos=repos: ours(e, folder, repos, 10)),
                ("ours_per_repo", lambda e, repos=repos: ours(e, folder, repos, 1000)),
            ]
            if args.naive:
                runs.append(("naive", lambda e, repos=repos: naive(e, repos)))
            for name, run in runs:
                with GitHubEmulator() as emu:
                    prepare(emu)
                    entry[name] = run(emu)
            if args.naive:
                entry["naive_duplicates_with_lag"] = naive_duplicates_with_index_lag(min(repos, 100))
            results.append(entry)
            print(f"{repos} repositories measured", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(table(results))
    print()
    print(
        f"load average (1, 5, 15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs"
    )
    for entry in results:
        print(
            f"- {entry['repos']} repositories, one issue each: {entry['repos'] + 1} paced writes need "
            f"{entry['paced_seconds_one_per_repo']} s (1 a second, 80 a minute, 500 an hour)"
        )
        if "naive_duplicates_with_lag" in entry:
            print(
                f"  naive rerun within the search index lag (60 s): {entry['naive_duplicates_with_lag']} duplicate "
                "issue(s)" + (" (measured on 100)" if entry["repos"] > 100 else "")
            )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
