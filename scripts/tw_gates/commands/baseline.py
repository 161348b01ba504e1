from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """Performance baseline of the Markdown parser for the audit (G3): capture
p50/p95/p99 parse latency and peak RSS over a corpus (after a warm-up), sign the
capture as a performance baseline (TW_BASELINE_KEY), verify a signed one
(TW_BASELINE_KEYS; a consumer's key never verifies a baseline). A failed capture or a bad signature
exits 6, like the audit's baseline check."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    cap = sub.add_parser("capture", help="measure a parser over a corpus and write the capture JSON")
    cap.add_argument(
        "--target",
        help="builtin:safe | builtin:commonmark | a command reading one document on stdin "
        "(default: $TW_PERF_TARGET or builtin:safe)",
    )
    cap.add_argument(
        "--corpus", metavar="DIR", help="folder of *.md/*.markdown/*.txt (default: the built-in corpus builtin:v1)"
    )
    cap.add_argument("--runs", type=int, metavar="N", help="measured parses per document (default 5)")
    cap.add_argument("--warmup", type=int, metavar="N", help="unmeasured parses per document first (default 2)")
    cap.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        dest="timeout_s",
        help="limit for the builtin worker / for each command run (default 600)",
    )
    cap.add_argument("--out", required=True, metavar="PATH", help="capture JSON to write")
    cap.add_argument("--sign", action="store_true", help="sign it too (TW_BASELINE_KEY, TW_BASELINE_KEY_ID)")
    sign = sub.add_parser("sign", help="sign a capture in place with TW_BASELINE_KEY (it becomes a baseline)")
    sign.add_argument("path", metavar="PATH")
    verify = sub.add_parser(
        "verify", help="verify a signed baseline (TW_BASELINE_KEYS / TW_BASELINE_KEY); exit 6 if bad"
    )
    verify.add_argument("path", metavar="PATH")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import UsageError
    from tw_gates.core.fsio import atomic_write_json
    from tw_gates.core.keyrings import BaselineKeys
    from tw_gates.core.settings import load_settings
    from tw_gates.parser import baseline

    if args.action == "capture":
        settings = load_settings(
            baseline.CaptureSettings,
            {
                "target": args.target,
                "corpus": args.corpus,
                "runs": args.runs,
                "warmup": args.warmup,
                "timeout_s": args.timeout_s,
            },
        )
        signing = load_settings(BaselineKeys)
        if args.sign and not signing.baseline_ring().can_sign:
            raise UsageError("--sign needs a signing key: set TW_BASELINE_KEY (and TW_BASELINE_KEY_ID)")
        result = baseline.capture(settings, progress=runner.echo)
        atomic_write_json(args.out, baseline.capture_document(result))
        lat = result.latency
        runner.echo(
            f"{result.target} on {result.corpus} ({result.corpus_documents} documents, {lat.samples} samples): "
            f"p50 {lat.p50_ms:g} ms, p95 {lat.p95_ms:g} ms, p99 {lat.p99_ms:g} ms, "
            f"peak RSS {result.peak_rss_mib:g} MiB -> {args.out}"
        )
        if args.sign:
            runner.echo(f"signed with key {baseline.sign_capture(args.out, signing)!r}")
        else:
            runner.annotate(
                "warning",
                f"{args.out} is unsigned: fine as a current capture (audit --current), but the audit (G3) refuses an "
                "unsigned baseline (exit 6); sign it with `tw-gates baseline sign` (TW_HMAC_KEY) or capture with "
                "--sign (the action's input hmac-key)",
                title="tw-gates baseline",
            )
        runner.set_output("capture", args.out)
        return Outcome(0)
    signing = load_settings(BaselineKeys)
    if args.action == "sign":
        try:
            kid = baseline.sign_capture(args.path, signing)
        except baseline.BaselineError as exc:
            raise UsageError(str(exc)) from None
        runner.echo(f"{args.path} signed with key {kid!r}")
        return Outcome(0)
    model, kid = baseline.verify_capture(args.path, signing)
    runner.echo(
        f"{args.path}: signature valid (key {kid!r}); {model.target} on {model.corpus}, "
        f"p95 {model.latency.p95_ms:g} ms, captured {model.captured_at:%Y-%m-%d}"
    )
    return Outcome(0)


COMMAND = Command(
    name="baseline",
    help="capture, sign or verify the parser performance baseline (used by G3)",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    order=13,
)
