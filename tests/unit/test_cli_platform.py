import pytest

from tw_gates.chain.platform import PlatformSettings, platform


@pytest.mark.parametrize(
    "sys_platform, runner_os, linux",
    [
        ("linux", None, True),
        ("linux", "Linux", True),
        ("darwin", None, False),
        ("win32", None, False),
        ("linux", "Windows", False),
        ("linux", "macOS", False),
        ("freebsd14", None, False),
    ],
)
def test_check_platform(sys_platform, runner_os, linux):
    result = platform(PlatformSettings(platform=sys_platform, runner_os=runner_os))
    assert result.linux is linux
    assert int(result.exit_code) == (0 if linux else 2)
    if not linux:
        assert "Linux only" in result.message


def test_cli_exit_codes_and_message(cli):
    code, out, err = cli("platform")
    assert code == 0 and "Linux" in out
    code, out, err = cli("platform", "--platform", "darwin")
    assert code == 2
    assert err.strip().splitlines() == [
        "tw-gates platform: error: R2 platform: tw-gates runs on Linux only, this is 'darwin'; "
        "use a Linux runner (runs-on: ubuntu-latest)"
    ]


def test_runner_annotation_and_outputs(cli, tmp_path):
    out_file = tmp_path / "out"
    out_file.touch()
    code, out, err = cli(
        "platform", env={"GITHUB_ACTIONS": "true", "RUNNER_OS": "macOS", "GITHUB_OUTPUT": str(out_file)}
    )
    assert code == 2 and "::error title=tw-gates platform::" in out
    assert "linux<<" in out_file.read_text() and "false" in out_file.read_text()


def test_usage_errors_exit_1_and_unknown_command(cli):
    code, _, err = cli("platform", "--bogus")
    assert code == 1 and "unrecognized arguments" in err
    code, _, _ = cli("no-such-command")
    assert code == 1


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "platform" in out and "gates" in out


def test_internal_error_is_one_line(cli, monkeypatch):
    import tw_gates.chain.platform as pg

    def broken(settings):
        raise RuntimeError("kaput")

    monkeypatch.setattr(pg, "platform", broken)
    code, out, err = cli("platform")
    assert code == 1
    assert (
        err.strip()
        == "tw-gates platform: error: internal error: RuntimeError: kaput (set TW_GATES_DEBUG=1 for a traceback)"
    )


def test_every_run_is_counted_in_metrics(cli, tmp_path):
    cli("platform")
    cli("platform", "--platform", "win32")
    text = (tmp_path / ".metrics" / "tw_gates.prom").read_text()
    assert 'tw_gates_command_runs_total{command="platform",exit_code="0"} 1.0' in text
    assert 'tw_gates_command_runs_total{command="platform",exit_code="2"} 1.0' in text


def test_chain_selection(cli):
    code, out, _ = cli("gates", "--only", "r2")
    assert code == 0 and "platform" in out and "PASS" in out
    code, out, err = cli("gates", "--only", "nope")
    assert code == 1 and "unknown gate(s): nope" in err
    # Off Linux the chain is refused before any gate runs (R2 in the CLI).
    code, out, err = cli("gates", env={"TW_PLATFORM": "darwin"})
    assert code == 2 and "runs on Linux only, this is 'darwin'" in err and "PASS" not in out


def test_outputs_file_missing_is_created_not_an_internal_error(cli, tmp_path):
    out_file = tmp_path / "not-yet"
    code, _, err = cli("platform", env={"GITHUB_OUTPUT": str(out_file)})
    assert code == 0 and "linux<<" in out_file.read_text()


def test_a_closed_pipe_is_not_an_internal_error(monkeypatch, capsys):
    import os

    from tw_gates.cli import main

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`| head`) is gone
    closed = os.fdopen(write_end, "w")
    monkeypatch.setattr("sys.stdout", closed)
    try:
        code = main(["schema", "consumer-artifact"])
    finally:
        monkeypatch.undo()
        closed.close()
    assert code == 1
    assert capsys.readouterr().err == ""


# Every command is a gate unless the CLI names it otherwise; each gate gets the
# smallest argv that passes argparse, so R2 is what stops it.
GATE_ARGV = {
    "adversarial": [],
    "audit": [],
    "baseline": ["verify", "baseline.json"],
    "behavioral": [],
    "canary": [],
    "collect": ["--out", "collected"],
    "evidence": ["verify"],
    "file-issues": [],
    "gates": ["--only", "g1"],
    "hmac-policy": [],
    "ingest": [],
    "phase": ["status"],
    "self-audit": ["--out", "artifact.json"],
    "telemetry-check": [],
    "verify-nets": [],
}


def test_every_command_is_classified_as_gate_or_not():
    from tw_gates.cli import NOT_GATES
    from tw_gates.commands import discover

    names = {c.name for c in discover()}
    assert names == set(GATE_ARGV) | NOT_GATES, "a new command must be added to GATE_ARGV or NOT_GATES"
    assert not set(GATE_ARGV) & NOT_GATES


@pytest.mark.parametrize("name", sorted(GATE_ARGV))
@pytest.mark.parametrize(("variable", "value"), [("RUNNER_OS", "Windows"), ("TW_PLATFORM", "darwin")])
def test_every_gate_refuses_a_non_linux_runner(cli, tmp_path, name, variable, value):
    code, out, err = cli(name, *GATE_ARGV[name], env={variable: value}, cwd=tmp_path)
    assert code == 2, (out, err)
    assert err.strip().splitlines() == [
        f"tw-gates {name}: error: R2 platform: tw-gates runs on Linux only, this is {value!r}; "
        "use a Linux runner (runs-on: ubuntu-latest)"
    ]
    assert list(tmp_path.iterdir()) == [tmp_path / ".metrics"]  # nothing written but the run's metrics


def test_tools_that_are_not_gates_run_anywhere(cli, tmp_path):
    code, out, _ = cli("schema", env={"RUNNER_OS": "Windows"})
    assert code == 0 and "consumer-artifact" in out
    code, _, _ = cli("--version", env={"RUNNER_OS": "Windows"})
    assert code == 0
