"""The ``mxsim`` command line.

Each subcommand lives in its own module that provides ``add_parser(sub)``
(register the subparser and its arguments) and ``run(args) -> int``.  Exit
status: 0 all good, 1 some expectation not met, 2 invalid input (with a
message naming the file, key path and what was expected; never a traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules providing subcommands, in the order ``mxsim --help`` lists them.
COMMAND_MODULES = [
    "sim.commands.run",
    "sim.commands.check",
    "sim.commands.validate",
    "sim.commands.schema",
    "sim.commands.report",
    "sim.commands.replay",
    "sim.commands.trace",
    "sim.commands.demo",
    "sim.commands.serve",
    "sim.commands.probe",
]


class UsageError(Exception):
    """Bad input from the user: printed as one message, exit status 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mxsim")
    except PackageNotFoundError:      # running from a checkout that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mxsim",
        description="Event-sourced mail-flow simulator and conformance test bed.")
    parser.add_argument("--version", action="version", version=f"mxsim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
        # Descriptions come from docstrings: drop their reST literal markup.
        if p.description:
            p.description = p.description.replace("``", "")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"mxsim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
