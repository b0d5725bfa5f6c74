"""The `c2f-hf` command line: one subcommand family per module.

Each module in `COMMAND_MODULES` exposes `add_cli_commands(subparsers)`, which adds its subcommands and sets a
`handler(args) -> int` default on each of them. A handler's ValueError or OSError (a bad input: a file that is
missing or unreadable, a field that is wrong) is printed as one line `c2f-hf <command>: <message>` and the exit
status is 1; `--verbose` shows the traceback instead.
"""

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = [
    "c2f_hf.convert_original_checkpoint",
    "c2f_hf.data.cli",
    "c2f_hf.demo",
    "c2f_hf.evaluation.cli",
    "c2f_hf.hub.cli",
    "c2f_hf.training.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c2f-hf", description="C2F-Seg amodal segmentation tools.")
    parser.add_argument("--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_cli_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as error:
        if args.verbose:
            raise
        print(f"c2f-hf {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
