from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", help="the template (.md, .yml/.yaml, .json; anything else is plain text)")
    parser.add_argument(
        "--values",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML or JSON mapping of NAME: value (repeatable; later files win)",
    )
    parser.add_argument("--out", metavar="PATH", help="write here (atomically) instead of stdout")
    parser.add_argument(
        "--format", choices=("text", "md", "json", "yaml"), help="override the format the template's suffix implies"
    )


def run(args: argparse.Namespace) -> Outcome:
    import sys

    from tw_gates.core import runner
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.phases import render

    values = render.load_values(args.values)
    result = render.render_file(args.template, values, render.format_for(args.template, args.format))
    if result.unused:
        runner.warn(f"values not used by {args.template}: {', '.join(result.unused)}")
    if args.out:
        atomic_write_text(args.out, result.text)
        runner.echo(f"rendered {args.template} -> {args.out} ({result.placeholders} placeholders filled)")
        runner.set_output("path", args.out)
    else:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    return Outcome(0)


COMMAND = Command(
    name="render",
    help="fill {{PLACEHOLDER}} templates (md, yaml, json); exit 2 if any is unresolved",
    configure=configure,
    run=run,
    order=140,
)
