"""The `c2f-hf convert-original`, `c2f-hf export` and `c2f-hf push` subcommands (the `hub` extra)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .cards import EvaluationSource
from .convert import convert_original_checkpoint
from .export import ExportOptions, export_model
from .push import push_folder


def _evaluation_source(args: argparse.Namespace) -> EvaluationSource | None:
    if args.metrics is None:
        return None
    if not args.eval_dataset:
        raise ValueError("--eval-dataset: name the dataset the --metrics were measured on (shown in the card)")
    return EvaluationSource(
        metrics_path=args.metrics,
        dataset_name=args.eval_dataset,
        dataset_type=args.eval_dataset_type or re.sub(r"[^a-z0-9]+", "-", args.eval_dataset.lower()).strip("-"),
        command=args.evaluation_command,
        split=args.eval_split,
    )


def run_export(args: argparse.Namespace) -> int:
    """`c2f-hf export`: write the repo folder and print its files."""
    options = ExportOptions(
        repo_id=args.repo_id,
        model_name=args.model_name,
        training_data=args.training_data,
        training_command=args.training_command,
        datasets=args.dataset,
        evaluation=_evaluation_source(args),
        converted=args.converted,
        synthetic_only=args.synthetic_only,
        limitations=args.limitation,
        base_model=args.base_model,
    )
    for path in export_model(args.model_dir, args.out, options):
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    """`c2f-hf push`: upload the folder and print the commit URL."""
    print(push_folder(args.repo_dir, args.repo_id, args.private, args.commit_message))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """`c2f-hf convert-original`: convert the authors' files and print the folder written."""
    output = convert_original_checkpoint(
        args.vq_checkpoint,
        args.vq_config,
        args.checkpoint,
        args.config,
        args.output,
        push_to_hub=args.push_to_hub,
        allow_unexpected=args.allow_unexpected,
    )
    print(output)
    return 0


def _add_convert_parser(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser("convert-original")
    convert.add_argument("--vq-checkpoint", type=Path, required=True, help="vqgan_<DS>.pth (key 'g_model')")
    convert.add_argument("--vq-config", type=Path, required=True, help="vqgan_<DS>.yml")
    convert.add_argument(
        "--checkpoint", type=Path, required=True, help="c2f_seg_<DS>.pth (keys 'model', 'img_encoder', 'refine')"
    )
    convert.add_argument("--config", type=Path, required=True, help="c2f_seg_<DS>.yml")
    convert.add_argument("--output", type=Path, required=True, help="new (or empty) folder to write the repo into")
    convert.add_argument("--push-to-hub", metavar="REPO", help="also upload the folder to this Hub model repo")
    convert.add_argument(
        "--allow-unexpected",
        action="store_true",
        help="ignore extra parameters in the state dicts (listed in the card)",
    )
    convert.set_defaults(handler=run_convert)


def _add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export")
    export.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="save_pretrained folder of the model")
    export.add_argument("--out", type=Path, required=True, help="new (or empty) folder to write the repo into")
    export.add_argument("--repo-id", help="Hub id the card's snippets load from (default: the --out path)")
    export.add_argument("--model-name", help="card title and model-index name (default: MODEL_DIR's name)")
    export.add_argument("--metrics", type=Path, help="metrics.json written by c2f-hf evaluate")
    export.add_argument("--eval-dataset", help="name of the dataset --metrics was measured on (needed with it)")
    export.add_argument("--eval-dataset-type", help="its Hub dataset id or slug (default: from --eval-dataset)")
    export.add_argument("--eval-split", help="the split --metrics was measured on")
    export.add_argument("--evaluation-command", help="the exact command that wrote --metrics")
    export.add_argument("--training-command", help="the exact command that trained the weights")
    export.add_argument("--training-data", help="what the model was trained on, in a sentence or two")
    export.add_argument("--dataset", action="append", default=[], help="Hub dataset id for the card (repeatable)")
    export.add_argument("--limitation", action="append", default=[], help="extra limitation bullet (repeatable)")
    export.add_argument("--base-model", help="Hub id of the model the weights were fine-tuned from")
    converted = export.add_mutually_exclusive_group()
    converted.add_argument("--converted", action="store_true", default=None, help="weights are the authors'")
    converted.add_argument("--not-converted", dest="converted", action="store_false", help="weights are ours")
    synthetic = export.add_mutually_exclusive_group()
    synthetic.add_argument(
        "--synthetic-only", action="store_true", default=None, help="say the model saw synthetic shapes only"
    )
    synthetic.add_argument("--not-synthetic-only", dest="synthetic_only", action="store_false")
    export.set_defaults(handler=run_export)


def _add_push_parser(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser("push")
    push.add_argument("repo_dir", type=Path, metavar="REPO_DIR", help="folder written by c2f-hf export")
    push.add_argument("--repo-id", required=True, help="Hub model repo id, e.g. user/c2f-seg-synthetic-tiny")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--commit-message", default="Upload C2F-Seg model")
    push.set_defaults(handler=run_push)


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `convert-original`, `export` and `push` (their one-line help is `c2f_hf.cli.COMMANDS`')."""
    _add_convert_parser(subparsers)
    _add_export_parser(subparsers)
    _add_push_parser(subparsers)
