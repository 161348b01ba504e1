"""Baseline capture, signing and comparison (the numbers G3 judges)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tw_gates.core.settings import load_settings
from tw_gates.parser.baseline import (
    Comparability,
    Thresholds,
    builtin_corpus,
    compare,
    load_corpus,
    percentile,
)
from tw_gates.schemas.baseline import PerfCapture

KEY = {"TW_BASELINE_KEY": "baseline-signing-key-0123456789ab", "TW_BASELINE_KEY_ID": "perf2026"}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Title\n\nSome *text* and a [link](https://example.com).\n")
    (folder / "sub" / "b.markdown").write_text("- one\n- two\n\n```\ncode\n```\n")
    (folder / "c.txt").write_text("plain paragraph\n")
    (folder / "ignored.html").write_text("<p>not markdown</p>")
    return folder


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path}"


def test_builtin_capture_writes_a_valid_capture(tmp_path, cli, corpus):
    out = tmp_path / "cap.json"
    code, stdout, _ = cli(
        "baseline",
        "capture",
        "--target",
        "builtin:safe",
        "--corpus",
        corpus,
        "--runs",
        "3",
        "--warmup",
        "1",
        "--out",
        out,
    )
    assert code == 0, stdout
    capture = PerfCapture.model_validate_json(out.read_text())
    assert capture.target == "builtin:safe" and capture.latency_source == "in-process"
    assert capture.corpus_documents == 3 and capture.latency.samples == 9 and capture.runs == 3
    assert 0 < capture.latency.p50_ms <= capture.latency.p95_ms <= capture.latency.p99_ms <= capture.latency.max_ms
    # The parser's own process, not tw-gates: markdown-it-py in Python is tens of MiB, not hundreds.
    assert 5 < capture.peak_rss_mib < 500
    assert capture.signature is None
    assert "builtin:safe on " in stdout and f"-> {out}" in stdout


def test_corpus_digest_names_the_documents(corpus):
    first = load_corpus(str(corpus))
    assert [p for p, _ in first.documents] == ["a.md", "c.txt", "sub/b.markdown"]
    (corpus / "c.txt").write_text("changed\n")
    assert load_corpus(str(corpus)).sha256 != first.sha256


def test_builtin_corpus_is_deterministic_and_varied():
    docs = builtin_corpus()
    assert docs == builtin_corpus() and len(docs) == 24
    sizes = sorted(len(d) for _, d in docs)
    assert sizes[0] >= 512 and sizes[-1] >= 64 * 1024
    text = b"".join(d for _, d in docs)
    for construct in (b"\n# ", b"| --- |", b"```python", b"\n> ", b"](https://", b"**"):
        assert construct in text


def test_command_target_uses_the_reported_parse_time(tmp_path, cli, corpus):
    target = script(
        tmp_path,
        "parser.py",
        """\
        import sys
        sys.stdin.buffer.read()
        print("tw-gates-parse-ms: 1.5", file=sys.stderr)
    """,
    )
    out = tmp_path / "cap.json"
    code, stdout, _ = cli(
        "baseline", "capture", "--target", target, "--corpus", corpus, "--runs", "2", "--warmup", "0", "--out", out
    )
    assert code == 0, stdout
    capture = PerfCapture.model_validate_json(out.read_text())
    assert capture.latency_source == "reported" and capture.latency.p99_ms == 1.5 and capture.latency.samples == 6


def test_command_target_without_report_uses_wall_time(tmp_path, corpus, cli):
    out = tmp_path / "cap.json"
    assert cli("baseline", "capture", "--target", "cat", "--corpus", corpus, "--runs", "1", "--out", out)[0] == 0
    capture = PerfCapture.model_validate_json(out.read_text())
    assert capture.latency_source == "wall" and capture.latency.p50_ms > 0


def test_failing_or_hanging_target_is_exit_6(tmp_path, cli, corpus):
    failing = script(tmp_path, "fail.py", "import sys; sys.stdin.read(); sys.exit(3)\n")
    code, _, err = cli("baseline", "capture", "--target", failing, "--corpus", corpus, "--out", tmp_path / "x.json")
    assert code == 6 and "capture failed on a.md" in err and "exited 3" in err
    hanging = script(tmp_path, "hang.py", "import time; time.sleep(60)\n")
    code, _, err = cli(
        "baseline", "capture", "--target", hanging, "--corpus", corpus, "--timeout", "0.5", "--out", tmp_path / "x.json"
    )
    assert code == 6 and "timed out" in err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "builtin:nope"], "unknown builtin target builtin:nope (known: builtin:commonmark, builtin:safe)"),
        (["--corpus", "/nonexistent/corpus"], "corpus folder not found"),
        (["--target", "'unbalanced"], "not a valid command line"),
        (["--runs", "0"], "runs"),
    ],
)
def test_capture_usage_errors(tmp_path, cli, argv, message):
    code, _, err = cli("baseline", "capture", *argv, "--out", tmp_path / "x.json")
    assert code == 1 and message in err


def _capture(tmp_path: Path, cli, name: str = "cap.json", runs: str = "1") -> Path:
    out = tmp_path / name
    assert cli("baseline", "capture", "--target", "cat", "--runs", runs, "--warmup", "0", "--out", out)[0] == 0
    return out


def test_sign_then_verify_and_key_rotation(tmp_path, cli):
    path = _capture(tmp_path, cli)
    code, out, _ = cli("baseline", "sign", path, env=KEY)
    assert code == 0 and "signed with key 'perf2026'" in out
    assert json.loads(path.read_text())["signature"]["kid"] == "perf2026"
    # A verifier with only the verification keys (rotation: old and new).
    code, out, _ = cli(
        "baseline",
        "verify",
        path,
        env={
            "TW_BASELINE_KEY": "",
            "TW_BASELINE_KEYS": json.dumps({"perf2025": "x" * 32, "perf2026": KEY["TW_BASELINE_KEY"]}),
        },
    )
    assert code == 0 and "signature valid (key 'perf2026')" in out


def test_capture_and_sign_in_one_go(tmp_path, cli):
    out = tmp_path / "b.json"
    code, stdout, _ = cli("baseline", "capture", "--target", "cat", "--runs", "1", "--out", out, "--sign", env=KEY)
    assert code == 0 and "signed with key 'perf2026'" in stdout
    assert cli("baseline", "verify", out, env=KEY)[0] == 0


def test_sign_needs_a_key(tmp_path, cli):
    path = _capture(tmp_path, cli)
    code, _, err = cli("baseline", "sign", path)
    assert code == 1 and "TW_BASELINE_KEY" in err
    code, _, err = cli("baseline", "capture", "--target", "cat", "--out", tmp_path / "y.json", "--sign")
    assert code == 1 and "--sign needs a signing key" in err and not (tmp_path / "y.json").exists()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda doc: doc.pop("signature"), "missing_signature"),
        (lambda doc: doc["latency"].update(p95_ms=doc["latency"]["p95_ms"] / 2), "bad_signature"),
        (lambda doc: doc["signature"].update(kid="someone-else"), "unknown_kid"),
    ],
)
def test_verify_rejects_tampered_or_unsigned_with_exit_6(tmp_path, cli, tamper, reason):
    path = _capture(tmp_path, cli)
    assert cli("baseline", "sign", path, env=KEY)[0] == 0
    doc = json.loads(path.read_text())
    tamper(doc)
    path.write_text(json.dumps(doc))
    code, _, err = cli("baseline", "verify", path, env=KEY)
    assert code == 6 and f"signature rejected ({reason})" in err


def test_verify_missing_or_invalid_file_is_exit_6(tmp_path, cli):
    code, _, err = cli("baseline", "verify", tmp_path / "none.json", env=KEY)
    assert code == 6 and "baseline not found" in err
    (tmp_path / "bad.json").write_text('{"schema_version": "1.0"}')
    code, _, err = cli("baseline", "verify", tmp_path / "bad.json", env=KEY)
    assert code == 6 and "invalid baseline" in err


# --------------------------------------------------------------------------- comparison


def capture_doc(p50=2.0, p95=10.0, p99=20.0, rss=40.0, corpus_sha="a" * 64, target="builtin:safe") -> PerfCapture:
    return PerfCapture.model_validate(
        {
            "captured_at": "2026-01-01T00:00:00Z",
            "tool_version": "0.1.0",
            "target": target,
            "latency_source": "in-process",
            "corpus": "builtin:v1",
            "corpus_sha256": corpus_sha,
            "corpus_documents": 24,
            "corpus_bytes": 1000,
            "warmup": 2,
            "runs": 5,
            "latency": {"samples": 120, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "mean_ms": p50, "max_ms": p99},
            "peak_rss_mib": rss,
            "host": {"platform": "linux", "python": "3.11"},
        }
    )


def breaches(current: PerfCapture, thresholds: Thresholds | None = None) -> list[str]:
    return [c.metric for c in compare(capture_doc(), current, thresholds or load_settings(Thresholds)) if not c.ok]


def test_thresholds_are_inclusive_limits():
    assert breaches(capture_doc(p50=2.2, p95=12.5, p99=30.0, rss=70.0)) == []
    assert breaches(capture_doc(p50=2.6)) == ["latency_p50_ms"]
    assert breaches(capture_doc(p95=12.51)) == ["latency_p95_ms"]
    assert breaches(capture_doc(p99=30.01)) == ["latency_p99_ms"]
    assert breaches(capture_doc(rss=70.01)) == ["peak_rss_mib"]


def test_sub_millisecond_noise_floor():
    # p50 2.0 -> 2.4 is x1.2 but only +0.4 ms: below the 0.5 ms floor, not a breach.
    assert breaches(capture_doc(p50=2.4)) == []
    assert breaches(capture_doc(p50=2.4), Thresholds(min_delta_ms=0)) == ["latency_p50_ms"]


def test_thresholds_from_environment(monkeypatch):
    monkeypatch.setenv("TW_PERF_P95_RATIO", "1.05")
    monkeypatch.setenv("TW_PERF_RSS_MIB", "5")
    assert breaches(capture_doc(p95=11.0, rss=46.0)) == ["latency_p95_ms", "peak_rss_mib"]


@pytest.mark.parametrize("other", [dict(corpus_sha="b" * 64), dict(target="cat")], ids=["corpus", "target"])
def test_different_corpus_or_target_cannot_be_compared(other):
    with pytest.raises(Comparability):
        compare(capture_doc(), capture_doc(**other), Thresholds())


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.5
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([3.0], 99) == 3.0
