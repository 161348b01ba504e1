from __future__ import annotations

import argparse
import json

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="schema name (omit to list them)")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates import schemas
    from tw_gates.core import runner

    if not args.name:
        for name in sorted(schemas.REGISTRY):
            runner.echo(name)
        return Outcome(0)
    model = schemas.load(args.name)
    runner.echo(json.dumps(model.model_json_schema(), indent=2))
    return Outcome(0)


COMMAND = Command(
    name="schema", help="print the JSON Schema of a data contract", configure=configure, run=run, order=200
)
