"""The benchmark harness in quick mode on the start-up bench: it runs, reads the
bench's BENCH-JSON line and writes its tables into a docs page. Checks the
table, never the time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bench import run_all

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_startup_run_writes_its_table(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(
        f"# Benchmarks\n\nHand-written intro.\n\n{run_all.BEGIN}\nold\n{run_all.END}\n\nHand-written tail.\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.run_all", "--quick", "--only", "startup", "--write-docs", "--docs", page],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written intro.\n") and text.endswith("\nHand-written tail.\n")
    assert "\nold\n" not in text  # the generated block was replaced
    generated = text.split(run_all.BEGIN)[1].split(run_all.END)[0]
    assert "- machine: " in generated and " cores" in generated and "- Python: " in generated
    assert "1-minute load average:" in generated
    # the summary table: the three fast commands against python -c pass
    summary = generated.split("#### Summary")[1].split("### startup")[0]
    for case in ("tw-gates --help", "tw-gates --version", "tw-gates platform"):
        assert f"| startup | {case} | " in summary and "| python -c pass |" in summary
    # the bench's own table, one row per case
    section = generated.split("### startup")[1]
    header = next(line for line in section.splitlines() if line.startswith("| case |"))
    rows = [line for line in section.splitlines() if line.startswith("| ") and line != header]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| python -c pass",
        "| tw-gates --help",
        "| tw-gates --version",
        "| tw-gates platform",
    ]


def test_bench_json_is_read_from_the_last_marker_line():
    output = 'noise\nBENCH-JSON {"bench": "a"}\nmore\nBENCH-JSON {"bench": "b", "ratios": []}\ntail\n'
    assert run_all.parse_output(output) == {"bench": "b", "ratios": []}
    assert run_all.parse_output("no marker here\n") is None
    assert run_all.parse_output("BENCH-JSON {not json\n") is None


def test_a_bench_without_the_marker_shows_its_output(tmp_path):
    bench = run_all.Bench("plain", "plain.py", "nothing")
    run = run_all.Run(bench, ["python", "tests/bench/plain.py"], code=0, seconds=1.0, tail=["42 things/s"])
    text = run_all.section(run)
    assert "no BENCH-JSON line" in text and "42 things/s" in text
    ratios = {"bench": "x", "ratios": [{"what": "w", "ours": 2.0, "unit": "s", "baseline": 1.0, "ratio": 2.0}]}
    run.data = json.loads(json.dumps(ratios))
    assert "| plain | w | 2 s |" in run_all.summary([run])
