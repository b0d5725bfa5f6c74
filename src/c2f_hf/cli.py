"""The `c2f-hf` command line: a static table of subcommands, each loaded only when it runs.

`COMMANDS` names each subcommand, the module that implements it and the extra it needs (`pip install
"c2f_hf[<extra>]"`; None for the core install). `c2f-hf --help` lists them without importing any command module;
`c2f-hf <command>` imports the one module of `<command>`, whose `add_cli_commands(subparsers)` adds its subcommands
with a `handler(args) -> int` default on each. So a command never imports another command's dependencies.

Errors are reported one way: a handler's ValueError or OSError (a bad input: a file that is missing or unreadable,
a field that is wrong) is printed as one line `c2f-hf <command>: <message>` on stderr and the exit status is 1; a
command whose extra is not installed says which one to install, in one line, with exit status 1. `--verbose` logs
at INFO level and shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple


class Command(NamedTuple):
    """One `c2f-hf` subcommand: its `name`, the `module` whose `add_cli_commands` adds it, the `extra` it needs
    (None: core) and its one-line `help`. A module's commands are consecutive in `COMMANDS`."""

    name: str
    module: str
    extra: str | None
    help: str


COMMANDS = (
    Command("demo", "c2f_hf.demo", None, "segment a synthetic scene with the shipped model"),
    Command("data", "c2f_hf.data.cli", "data", "write, convert or push amodal datasets (Parquet, common schema)"),
    Command("train-vq", "c2f_hf.training.cli", "train", "stage 1: train the mask VQ-GAN on amodal masks"),
    Command("train", "c2f_hf.training.cli", "train", "stage 2: train backbone, transformer and refiner (VQ frozen)"),
    Command("evaluate", "c2f_hf.evaluation.cli", "data", "score a model against the visible and convex-hull baselines"),
    Command("predict", "c2f_hf.evaluation.cli", "data", "write every object's predicted amodal mask as a dataset"),
    Command(
        "convert-original",
        "c2f_hf.hub.cli",
        "hub",
        "convert the authors' .pth checkpoints and yml configs into a Hub-ready model folder",
    ),
    Command("export", "c2f_hf.hub.cli", "hub", "build a Hub model repo folder (weights, remote code, card)"),
    Command("push", "c2f_hf.hub.cli", "hub", "upload an exported repo folder to the Hugging Face Hub"),
)
_COMMANDS_BY_NAME = {command.name: command for command in COMMANDS}


class MissingExtraError(Exception):
    """A command's third-party dependency is not installed: the message names the extra that brings it."""

    def __init__(self, command: Command, error: ImportError):
        missing = f"missing module: {error.name}" if error.name else str(error)
        super().__init__(
            f'this command needs the "{command.extra}" extra: pip install "c2f_hf[{command.extra}]" ({missing})'
        )


def _is_missing_extra(command: Command, error: ImportError) -> bool:
    """Whether `error` says that a dependency of `command`'s extra is not installed: a module that is not found
    (but not one of this package, which is a broken install), or a library's own "requires X" ImportError."""
    if command.extra is None:
        return False
    if isinstance(error, ModuleNotFoundError):
        return (error.name or "").split(".")[0] != "c2f_hf"
    return error.name is None


def _load(command: Command) -> ModuleType:
    """Import `command`'s module; MissingExtraError when its extra is not installed."""
    try:
        return importlib.import_module(command.module)
    except ImportError as error:
        if _is_missing_extra(command, error):
            raise MissingExtraError(command, error) from error
        raise


def _requested_command(argv: Sequence[str]) -> Command | None:
    """The command named by the first argument that is not an option (the top-level options take no value); None
    when there is none or when the top-level help comes first."""
    for argument in argv:
        if argument in ("-h", "--help"):
            return None
        if not argument.startswith("-"):
            return _COMMANDS_BY_NAME.get(argument)
    return None


def build_parser(requested: Command | None = None) -> argparse.ArgumentParser:
    """The `c2f-hf` parser. Every command of `COMMANDS` is listed with its help line; only the module of
    `requested` is imported and adds its real subcommands, the others are placeholders."""
    parser = argparse.ArgumentParser(prog="c2f-hf", description="C2F-Seg amodal segmentation tools.")
    parser.add_argument("--verbose", action="store_true", help="log at INFO level and show tracebacks")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        if requested is None or command.module != requested.module:
            subparsers.add_parser(command.name, help=command.help, add_help=False)
            continue
        if command.name not in subparsers.choices:
            _load(command).add_cli_commands(subparsers)
        added = subparsers.choices[command.name]
        added.description = added.description or command.help
    return parser


def _run(args: argparse.Namespace, command: Command) -> int:
    """Run the handler; a missing dependency of `command`'s extra met at run time is a MissingExtraError."""
    try:
        return int(args.handler(args) or 0)
    except ImportError as error:
        if _is_missing_extra(command, error):
            raise MissingExtraError(command, error) from error
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: `sys.argv[1:]`), run the command and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    requested = _requested_command(argv)
    verbose = "--verbose" in argv[: argv.index(requested.name)] if requested else False
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    try:
        args = build_parser(requested).parse_args(argv)
        return _run(args, requested)
    except (ValueError, OSError, MissingExtraError) as error:
        if verbose:
            raise
        print(f"c2f-hf {requested.name}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
