"""`c2f-hf train-vq` (stage 1) and `c2f-hf train` (stage 2)."""

import argparse

from ..data.schema import DATASET_SOURCE_HELP, REVISION_HELP
from .c2f import train_c2f
from .config import TRAINING_PRESETS, parse_overrides, read_config_file, resolve_config
from .vq import train_vq

_FLAGS = {
    "model_config": str,
    "dataset": str,
    "output_dir": str,
    "max_steps": int,
    "batch_size": int,
    "learning_rate": float,
    "gradient_accumulation_steps": int,
    "mixed_precision": str,
    "seed": int,
    "save_every": int,
    "eval_every": int,
    "report_to": str,
}
_HELP = {"dataset": DATASET_SOURCE_HELP}


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="kins", choices=sorted(TRAINING_PRESETS), help="model and schedule")
    parser.add_argument("--config", help="YAML or JSON file of training settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    for name, kind in _FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=_HELP.get(name))
    parser.add_argument("--revision", dest="dataset_revision", help=REVISION_HELP)


def _settings(args: argparse.Namespace, stage: str):
    file_values = read_config_file(args.config) if args.config else {}
    flags = {name: getattr(args, name) for name in _FLAGS} | {"dataset_revision": args.dataset_revision}
    if stage == "c2f":
        flags["vq_model"] = args.vq_model
        flags["init_model"] = args.init_model
        flags["init_backbone"] = args.init_backbone
    return resolve_config(stage, args.preset, file_values, parse_overrides(args.set), flags)


def _run_vq(args: argparse.Namespace) -> int:
    print(train_vq(_settings(args, "vq"), resume=args.resume))
    return 0


def _run_c2f(args: argparse.Namespace) -> int:
    print(train_c2f(_settings(args, "c2f"), resume=args.resume))
    return 0


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `train-vq` and `train` (their one-line help is `c2f_hf.cli.COMMANDS`')."""
    vq = subparsers.add_parser("train-vq")
    _add_common_arguments(vq)
    vq.set_defaults(handler=_run_vq)
    c2f = subparsers.add_parser("train")
    _add_common_arguments(c2f)
    c2f.add_argument("--vq-model", dest="vq_model", help="folder of the stage-1 model (train-vq's final/)")
    c2f.add_argument("--init-model", dest="init_model", help="fine-tune this C2FSegForAmodalSegmentation folder")
    c2f.add_argument(
        "--init-backbone", dest="init_backbone", help="start the ResNet from these weights (e.g. microsoft/resnet-50)"
    )
    c2f.set_defaults(handler=_run_c2f)
