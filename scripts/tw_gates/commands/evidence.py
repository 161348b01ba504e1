from __future__ import annotations

import argparse
import sys

from tw_gates.commands import Command, Outcome

_STDIN_FIELDS = ("evidence_id", "phase", "file", "lines", "description")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="record lines of a file as evidence (sha256 of the lines, redacted snippet)",
        description="Append one evidence block to the evidence file, as the next record of its hash chain "
        "(signed with TW_EVIDENCE_KEY, with the head beside it). Give the flags, or the JSON object "
        '{"evidence_id", "phase", "file", "lines", "description"} on stdin. The same id with the same hash again '
        "is a no-op; the same id with another hash is refused (exit 2).",
    )
    add.add_argument("--id", dest="evidence_id", help="evidence id, e.g. EV-1-ingest-hmac")
    add.add_argument("--phase", type=int, choices=range(5), metavar="N", help="phase 0-4")
    add.add_argument("--file", help="file the evidence is in (inside the repository root)")
    add.add_argument("--lines", help="line range A-B, 1-based, inclusive")
    add.add_argument("--description", help="what the lines show")
    _common(add)
    add.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up (exit 1) when another writer holds the lock this long (default 10)",
    )

    verify = actions.add_parser(
        "verify",
        help="check the hash chain, its signed head (TW_EVIDENCE_KEYS) and every block against the files "
        "(exit 2 on an edited, reordered or deleted record, or a changed file)",
    )
    _common(verify)
    verify.add_argument("--phase", type=int, choices=range(5), metavar="N", help="only this phase's blocks")

    chain = actions.add_parser(
        "chain",
        help="link a log written before it was a hash chain (and sign it with TW_EVIDENCE_KEY); run it once, "
        "when nobody appends",
    )
    _common(chain)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--evidence-file",
        default="evidence_blocks.jsonl",
        metavar="PATH",
        help="the JSON Lines evidence file (default: ./evidence_blocks.jsonl)",
    )
    parser.add_argument(
        "--root", default=".", metavar="DIR", help="repository root the block paths are relative to (default: .)"
    )


def _from_stdin() -> dict:

    from tw_gates.core import json_text
    from tw_gates.core.errors import UsageError

    text = sys.stdin.read()
    try:
        data = json_text.loads(text)
    except ValueError as exc:
        raise UsageError(f"stdin is not a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError("stdin must hold one JSON object with " + ", ".join(_STDIN_FIELDS))
    unknown = sorted(set(data) - set(_STDIN_FIELDS))
    missing = [k for k in _STDIN_FIELDS if k not in data]
    if unknown or missing:
        raise UsageError(
            "stdin JSON: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    if not isinstance(data["phase"], int) or isinstance(data["phase"], bool) or not 0 <= data["phase"] <= 4:
        raise UsageError("stdin JSON: phase must be an integer 0-4")
    if not all(isinstance(data[k], str) for k in _STDIN_FIELDS if k != "phase"):
        raise UsageError("stdin JSON: evidence_id, file, lines and description must be strings")
    return data


NO_KEY = (
    "no TW_EVIDENCE_KEY: the evidence records and the head are not signed; anyone who can write "
    "{path} can edit a record and rewrite the chain after it unnoticed"
)


def _ring(signing: bool):
    from tw_gates.core.keyrings import EvidenceKeys
    from tw_gates.core.settings import load_settings

    ring = load_settings(EvidenceKeys).evidence_ring()
    return ring if (ring.can_sign if signing else ring.kids) else None


def _add(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import UsageError
    from tw_gates.phases import evidence
    from tw_gates.phases.evidence_log import EvidenceLog

    flags = {
        "evidence_id": args.evidence_id,
        "phase": args.phase,
        "file": args.file,
        "lines": args.lines,
        "description": args.description,
    }
    if all(v is None for v in flags.values()):
        if sys.stdin.isatty():
            raise UsageError("give --id, --phase, --file, --lines and --description, or a JSON object on stdin")
        fields = _from_stdin()
    else:
        missing = [f"--{k.replace('evidence_', '')}" for k, v in flags.items() if v is None]
        if missing:
            raise UsageError(f"missing {', '.join(missing)}")
        fields = flags
    ring = _ring(signing=True)
    block = evidence.make_block(**fields, root=args.root)
    log = EvidenceLog(args.evidence_file, lock_timeout=args.lock_timeout, ring=ring)
    outcome = log.add(block)
    if ring is None:
        runner.warn(NO_KEY.format(path=args.evidence_file))
    state = f"recorded (record {outcome.seq})" if outcome.added else "already recorded (same hash)"
    runner.echo(
        f"{block.evidence_id} {state}: {block.file}:{block.lines} sha256 {block.sha256} -> {args.evidence_file}"
    )
    runner.set_output("evidence-id", block.evidence_id)
    runner.set_output("sha256", block.sha256)
    runner.set_output("added", "true" if outcome.added else "false")
    return Outcome(0)


def _verify(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.markdown import markdown_table
    from tw_gates.phases.evidence_verify import iter_failures, verify_log

    result = verify_log(args.evidence_file, root=args.root, phase=args.phase, ring=_ring(signing=False))
    for warning in result.warnings:
        runner.warn(warning)
    failures = result.failures
    if runner.on_runner():
        for check in failures:
            runner.annotate(
                "error",
                f"{check.evidence_id}: {check.detail}",
                file=check.file or None,
                title=f"evidence {check.status}",
            )
    ok = len(result.checks) - len(failures)
    scope = f" of phase {args.phase}" if args.phase is not None else ""
    runner.set_output("verified", str(ok))
    runner.set_output("failed", str(len(failures)))
    if failures:
        rows: list[list[object]] = [
            [c.evidence_id, c.status, f"{args.evidence_file}:{c.line}", c.detail] for c in failures
        ]
        runner.append_summary(
            f"### Evidence: {len(failures)} of {len(result.checks)} blocks{scope} do not verify\n\n"
            + markdown_table(["id", "status", "where", "detail"], rows)
        )
        for line in iter_failures(result):
            runner.echo(line)
        raise GateRejected(f"{len(failures)} of {len(result.checks)} evidence blocks{scope} do not verify ({ok} ok)")
    chain = f"; {result.chain}" if result.chain else ""
    runner.echo(f"{ok} evidence blocks{scope} verified against the files in {args.root}{chain}")
    runner.append_summary(f"### Evidence: {ok} blocks{scope} verified\n")
    return Outcome(0)


def _chain(args: argparse.Namespace) -> Outcome:
    from pathlib import Path

    from tw_gates.core import runner
    from tw_gates.phases.evidence_log import chain_log

    ring = _ring(signing=True)
    count = chain_log(Path(args.evidence_file), ring)
    signed = f"signed with key {ring.signing_kid!r}" if ring is not None else "unsigned (no TW_EVIDENCE_KEY)"
    runner.echo(f"{args.evidence_file}: {count} records linked into a hash chain, {signed}")
    return Outcome(0)


def run(args: argparse.Namespace) -> Outcome:
    return {"add": _add, "verify": _verify, "chain": _chain}[args.action](args)


COMMAND = Command(
    name="evidence",
    help="record evidence blocks (evidence_blocks.jsonl) and verify them",
    configure=configure,
    run=run,
    order=120,
)
