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

# Subcommands, in the order ``mxsim --help`` lists them: (name, module, one-line
# help).  Only the module of the command being run is imported, so ``mxsim
# --help`` and ``mxsim validate`` never pay for the simulator or the plots;
# tests/test_cli_startup.py keeps the help lines equal to the modules' own.
COMMANDS: list[tuple[str, str, str]] = [
    ("run", "sim.commands.run", "run one scenario and write its report"),
    ("check", "sim.commands.check", "run every scenario found and gate on the expectations"),
    ("validate", "sim.commands.validate", "check scenario files (exit 2 if any is invalid)"),
    ("schema", "sim.commands.schema", "print the JSON Schema of scenario files"),
    ("report", "sim.commands.report", "rebuild a run's report from its event log"),
    ("replay", "sim.commands.replay", "show every queue and link at a simulated time"),
    ("trace", "sim.commands.trace", "follow one recipient or message across hosts"),
    ("sweep", "sim.commands.sweep", "run a scenario over varied settings and seeds on Dask"),
    ("import", "sim.commands.import_", "judge a real MTA's log like a run"),
    ("explore", "sim.commands.explore",
     "search a scenario's explore: ranges for a world that breaks a guarantee"),
    ("demo", "sim.commands.demo",
     "built-in run: mail to an MX whose link is down for two days"),
    ("serve", "sim.commands.serve", "run one scenario host's roles on real sockets"),
    ("probe", "sim.commands.probe", "probe an SMTP server's guarantees from outside"),
]


class UsageError(Exception):
    """Bad input from the user: printed as one message, exit status 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mxsim")
    except PackageNotFoundError:      # running from a checkout that is not installed
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked: reading the installed
    distribution's metadata costs more than printing the help."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 help: str = "show program's version number and exit") -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"mxsim {_version()}")         # on stdout, as argparse's own version action
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand's arguments, or, with ``only``, with
    that one's arguments and the others as names and help lines only."""
    parser = argparse.ArgumentParser(
        prog="mxsim",
        description="Event-sourced mail-flow simulator and conformance test bed.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_line in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=help_line)
            continue
        module = importlib.import_module(module_name)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
        # Descriptions come from docstrings: drop their reST literal markup.
        if p.description:
            p.description = p.description.replace("``", "")
    return parser


def _command_in(argv: list[str]) -> str:
    """The subcommand named in ``argv`` ("" when none: the top-level help)."""
    names = {name for name, _, _ in COMMANDS}
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in names else ""
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=_command_in(argv))
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"mxsim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    # ``python -m sim.cli``: run the imported module's main, so that the
    # UsageError the commands raise (sim.cli's) is the one caught here, not
    # a second copy of this module's class under the name __main__.
    from sim.cli import main as _main
    sys.exit(_main())
