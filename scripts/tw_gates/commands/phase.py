from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def _phase_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"phase must be a number 0-4, not {text!r}") from None
    if not 0 <= value <= 4:
        raise argparse.ArgumentTypeError(f"phase must be 0-4, not {value}")
    return value


def _lookup_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=("auto", "local", "github"),
        help="where phase artifacts come from: the local .phase-N.complete.json, the Actions "
        "artifact phase-N-complete of the newest successful run of the phase workflow on the protected "
        "branch of this repository, from workflow_dispatch or workflow_call (GITHUB_TOKEN, GITHUB_REPOSITORY), "
        "or auto: the local file if present, else GitHub (default; env TW_PHASE_SOURCE)",
    )
    parser.add_argument(
        "--dir",
        dest="phase_dir",
        metavar="DIR",
        help="folder of the .phase-N.complete.json files (default: .; env TW_PHASE_DIR)",
    )
    parser.add_argument(
        "--repo",
        dest="github_repository",
        metavar="OWNER/NAME",
        help="repository whose Actions artifacts to search (default: $GITHUB_REPOSITORY)",
    )
    parser.add_argument(
        "--repo-dir", metavar="DIR", help="git checkout whose HEAD must descend from the artifact's commit (default: .)"
    )
    parser.add_argument(
        "--workflow",
        metavar="PATH",
        help="an Actions artifact counts only from a run of this workflow file (default: "
        ".github/workflows/phase.yml; a workflow_call caller: the caller's file; env TW_PHASE_WORKFLOW)",
    )
    parser.add_argument(
        "--branch",
        metavar="NAME",
        help="... on this branch (default: the repository's default branch; env TW_PHASE_BRANCH)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify",
        help="may phase N start? checks phase N-1's signed unlock artifact (exit 2 if not)",
        description="Phase N may start only when phase N-1's unlock artifact exists and verifies: schema versions, "
        "required keys, HMAC signature of a phase unlock (TW_PHASE_KEYS / TW_PHASE_KEY), phase number, and "
        "git_commit an ancestor of HEAD. Phase 0 has no prerequisite.",
    )
    verify.add_argument("phase", type=_phase_number, metavar="N", help="the phase about to start (0-4)")
    verify.add_argument("--artifact", metavar="PATH", help="check this file as phase N-1's artifact instead")
    _lookup_flags(verify)

    complete = actions.add_parser(
        "complete",
        help="write the signed .phase-N.complete.json and the completion report",
        description="Verify phase N-1, measure phase N (G2's JUnit for the baseline, G1 for the safety nets, the "
        "phase's evidence blocks re-hashed), refuse (exit 2) unless G1-G5 passed and the baseline is whole, then "
        "write .phase-N.complete.json signed with TW_PHASE_KEY and the completion report (job summary).",
    )
    complete.add_argument("phase", type=_phase_number, metavar="N", help="the phase that is complete (0-4)")
    complete.add_argument("--name", help="phase name (default: from --from-file, else 'Phase N')")
    complete.add_argument(
        "--junit", metavar="PATH", help="behavioral tests' JUnit XML (files, folders or globs) for baseline_pass_count"
    )
    complete.add_argument(
        "--expect", type=int, default=0, metavar="N", help="behavioral tests expected (0: every test in --junit)"
    )
    complete.add_argument(
        "--baseline",
        metavar="PASSED/EXPECTED",
        help="G2's score measured elsewhere (e.g. the gates job's output), when there is no --junit",
    )
    complete.add_argument("--gates-passed", metavar="LIST", help="CI gates that passed, e.g. G1,G2,G3,G4,G5")
    complete.add_argument(
        "--from-file",
        metavar="PATH",
        help="YAML/JSON values tw-gates cannot measure: performance_delta_median, "
        "performance_delta_p95, performance_threshold, summary, issues, estimated_time, deviations, "
        "next_steps (and baseline_pass_count / ci_gates_passed when not given by flags)",
    )
    complete.add_argument(
        "--evidence-file",
        metavar="PATH",
        help="evidence blocks to include (default: ./evidence_blocks.jsonl; env TW_EVIDENCE_FILE)",
    )
    complete.add_argument("--report", metavar="PATH", help="also write the completion report to this file")
    complete.add_argument(
        "--report-template",
        metavar="PATH",
        help="completion report template (default: templates/phase_completion_report.md)",
    )
    complete.add_argument(
        "--tag",
        action="store_true",
        help="create the local git tag phase-N-complete on the commit (pushing is up to you)",
    )
    _lookup_flags(complete)

    status = actions.add_parser("status", help="every phase: complete (date, commit), missing, or invalid")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _lookup_flags(status)


def _settings(args: argparse.Namespace):
    from tw_gates.core.settings import load_settings
    from tw_gates.phases.common import PhaseSettings

    return load_settings(
        PhaseSettings,
        {
            "phase_dir": args.phase_dir,
            "github_repository": args.github_repository,
            "repo_dir": args.repo_dir,
            "source": args.source,
            "evidence_file": getattr(args, "evidence_file", None),
            "workflow": args.workflow,
            "branch": args.branch,
        },
    )


def _verify(args: argparse.Namespace) -> Outcome:
    from pathlib import Path

    from tw_gates.core import runner
    from tw_gates.core.markdown import escape_markdown, inline_code
    from tw_gates.phases.unlock import verify_unlock

    result = verify_unlock(
        args.phase,
        _settings(args),
        artifact_path=Path(args.artifact) if args.artifact else None,
        progress=runner.progress,
    )
    runner.echo(result.message)
    if result.origin:
        runner.echo(f"artifact: {result.origin}")
    runner.set_output("unlocked", "true")
    if result.previous is not None:
        runner.set_output("previous-commit", result.previous.git_commit)
        runner.set_output("safety-nets-before", str(result.previous.safety_nets_count_after))
    runner.append_summary(
        f"### Phase {args.phase} unlock\n\n{escape_markdown(result.message)}\n"
        + (f"\nArtifact: {inline_code(result.origin)}\n" if result.origin else "")
    )
    return Outcome(0)


def _complete(args: argparse.Namespace) -> Outcome:
    from pathlib import Path

    from tw_gates.core import runner
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.phases.complete import complete_phase
    from tw_gates.phases.report import REPORT_TEMPLATE

    settings = _settings(args)
    result = complete_phase(
        args.phase,
        settings,
        name=args.name,
        junit=args.junit,
        expected_tests=args.expect,
        baseline_pass_count=args.baseline,
        values_file=Path(args.from_file) if args.from_file else None,
        gates_passed=args.gates_passed,
        progress=runner.progress,
        tag=args.tag,
        report_template=Path(args.report_template) if args.report_template else REPORT_TEMPLATE,
    )
    art = result.artifact
    runner.echo(
        f"Phase {art.phase} complete: {result.path} (commit {art.git_commit}, baseline "
        f"{art.baseline_pass_count}, gates {','.join(art.ci_gates_passed)}, safety nets "
        f"{art.safety_nets_count_before}->{art.safety_nets_count_after}, "
        f"{len(art.evidence_blocks)} evidence blocks)"
    )
    if result.tag:
        runner.echo(
            f"tag {result.tag} -> {art.git_commit} (local; push it with git push origin refs/tags/{result.tag})"
        )
    if args.report:
        atomic_write_text(args.report, result.report)
        runner.echo(f"report: {args.report}")
    runner.append_summary(result.report)
    runner.set_output("artifact-path", str(result.path))
    runner.set_output("artifact-name", f"phase-{art.phase}-complete")
    runner.set_output("git-commit", art.git_commit)
    runner.set_output("tag", result.tag or "")
    return Outcome(0)


def _status(args: argparse.Namespace) -> Outcome:
    import json

    from tw_gates.core import runner
    from tw_gates.core.markdown import markdown_table
    from tw_gates.phases.unlock import phase_status, status_exit_code

    states = phase_status(_settings(args), progress=runner.progress)
    if args.json:
        runner.echo(json.dumps([s.model_dump() for s in states], indent=2))
    else:
        for s in states:
            if s.state == "complete":
                runner.echo(f"Phase {s.phase}  complete  {s.completion_date}  {s.git_commit}  {s.phase_name}")
            else:
                runner.echo(f"Phase {s.phase}  {s.state:<8}  {s.detail}")
    rows: list[list[object]] = [
        [
            s.phase,
            s.state,
            s.phase_name or "",
            s.completion_date or "",
            (s.git_commit or "")[:12],
            s.detail or s.origin or "",
        ]
        for s in states
    ]
    runner.append_summary(
        "### Phases\n\n" + markdown_table(["phase", "state", "name", "completed", "commit", "detail"], rows)
    )
    done = sum(1 for s in states if s.state == "complete")
    runner.set_output("complete", str(done))
    code = status_exit_code(states)
    if code:
        from tw_gates.core.errors import GateRejected

        bad = ", ".join(f"phase {s.phase}: {s.detail}" for s in states if s.state == "invalid")
        raise GateRejected(f"invalid phase artifact(s): {bad}")
    return Outcome(0)


def run(args: argparse.Namespace) -> Outcome:
    return {"verify": _verify, "complete": _complete, "status": _status}[args.action](args)


COMMAND = Command(
    name="phase",
    help="phase unlock: verify phase N-1 before N, complete N (signed artifact), status",
    configure=configure,
    run=run,
    order=110,
)
