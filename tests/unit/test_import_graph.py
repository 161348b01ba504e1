"""Start-up is imports: this guards the import graph, not the time.

Each case runs tw-gates in a fresh interpreter and looks at ``sys.modules``.
The fast commands (``--help``, ``--version``, ``platform``, which runs before
every gate) load none of the heavy packages; a gate that does not talk to
GitHub never loads PyGithub. What each package costs to import on a 2-core
runner, and so why it is kept out: github 0.66 s, pydantic-settings 0.49 s,
requests 0.28 s, actions_toolkit.core 0.26 s (it pulls requests in),
prometheus_client 0.17 s, pydantic 0.15 s, portalocker 0.15 s
(tests/bench/startup_bench.py measures the result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI as the console script does and reports what was imported. With
# TW_PROBE_STOP_AT=module:function the gate function is replaced by one that
# reports at once: what a gate loads before it does its work.
PROBE = """
import json, os, sys
out = os.environ.pop("TW_PROBE_OUT")
stop_at = os.environ.pop("TW_PROBE_STOP_AT", "")

def report(code):
    with open(out, "w") as handle:
        json.dump({"code": code, "modules": sorted(sys.modules)}, handle)

if stop_at:
    import importlib
    module_name, _, function = stop_at.partition(":")
    module = importlib.import_module(module_name)
    def stop(*args, **kwargs):
        report("stopped")
        os._exit(0)
    setattr(module, function, stop)
from tw_gates.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
report(code)
"""

HEAVY = ("github", "requests", "pydantic_settings", "pydantic", "prometheus_client", "portalocker", "yaml")
# What no gate should load unless it talks to GitHub (or pushes metrics).
NOT_OFFLINE = ("github", "requests", "pydantic_settings", "prometheus_client", "actions_toolkit.core")


def probe(tmp_path: Path, *argv: str, stop_at: str | None = None) -> tuple[object, set[str]]:
    out = tmp_path / "probe.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "RUNNER_", "TW_", "ACTIONS_")) and k != "PYTHONPATH"
    }
    env.update(TW_PROBE_OUT=str(out), TW_METRICS_DIR=str(tmp_path / "metrics"))
    if stop_at:
        env["TW_PROBE_STOP_AT"] = stop_at
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.exists(), f"the probe did not report: {done.stderr[-2000:]}"
    data = json.loads(out.read_text())
    return data["code"], set(data["modules"])


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if p in modules or any(m.startswith(p + ".") for m in modules)]


@pytest.mark.parametrize(
    "argv, code",
    [(["--help"], 0), (["--version"], 0), (["platform"], 0), (["platform", "--platform", "darwin"], 2)],
)
def test_fast_commands_load_no_heavy_package(tmp_path, argv, code):
    got, modules = probe(tmp_path, *argv)
    assert got == code
    assert loaded(modules, HEAVY) == []
    assert "actions_toolkit.core" not in modules
    if argv[0] == "platform":  # and the run is still counted in the metrics textfile
        text = (tmp_path / "metrics" / "tw_gates.prom").read_text()
        assert f'tw_gates_command_runs_total{{command="platform",exit_code="{code}"}} 1.0' in text


OFFLINE_GATES = {
    "verify-nets": (["verify-nets"], "tw_gates.chain.verify_nets:verify_nets"),
    "behavioral": (["behavioral", "--junit", "JUNIT"], "tw_gates.chain.behavioral:behavioral"),
    "hmac-policy": (["hmac-policy"], "tw_gates.chain.hmac_policy:hmac_policy"),
    "telemetry-check": (["telemetry-check"], "tw_gates.chain.telemetry_check:telemetry_check"),
    "ingest": (["ingest", "--artifact", "EMPTY"], "tw_gates.ingest.ingest:ingest"),
    "self-audit": (["self-audit", "--out", "OUT"], "tw_gates.self_audit.self_audit:self_audit"),
    "adversarial": (["adversarial", "--target", "builtin:safe"], "tw_gates.parser.adversarial:adversarial"),
}


def _argv(tmp_path: Path, argv: list[str]) -> list[str]:
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite tests="1"><testcase classname="t" name="t"/></testsuite>\n')
    (tmp_path / "empty").mkdir(exist_ok=True)
    names = {"JUNIT": str(junit), "EMPTY": str(tmp_path / "empty"), "OUT": str(tmp_path / "out.json")}
    return [names.get(word, word) for word in argv]


@pytest.mark.parametrize("gate", sorted(OFFLINE_GATES))
def test_offline_gates_reach_their_work_without_network_packages(tmp_path, gate):
    argv, stop_at = OFFLINE_GATES[gate]
    got, modules = probe(tmp_path, *_argv(tmp_path, argv), stop_at=stop_at)
    assert got == "stopped", f"{gate} did not reach its gate function"
    assert loaded(modules, NOT_OFFLINE) == []


@pytest.mark.parametrize(
    "argv, code",
    [(["behavioral", "--junit", "JUNIT", "--expect", "1"], 0), (["ingest", "--artifact", "EMPTY"], 0)],
)
def test_a_whole_offline_run_never_loads_github(tmp_path, argv, code):
    got, modules = probe(tmp_path, *_argv(tmp_path, argv))
    assert got == code
    assert loaded(modules, NOT_OFFLINE) == []
