"""`c2f-hf evaluate`: load a model folder and its saved image processor, run `evaluate_model`, write the report."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from ..checkpoints import default_model_path
from ..data.schema import DATASET_SOURCE_HELP, REVISION_HELP, load_amodal_dataset
from ..data.transforms import VISIBLE_SOURCES
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from .report import format_markdown, write_report
from .runner import evaluate_model

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate` (its one-line help is `c2f_hf.cli.COMMANDS`')."""
    evaluate = subparsers.add_parser("evaluate")
    evaluate.add_argument("--model", help="save_pretrained folder or Hub id (default: the shipped default model)")
    evaluate.add_argument("--dataset", required=True, help=DATASET_SOURCE_HELP)
    evaluate.add_argument("--revision", help=REVISION_HELP)
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--visible-source", choices=VISIBLE_SOURCES, default="gt", help="model input masks")
    evaluate.add_argument("--num-steps", type=_positive_int, help="MaskGIT steps K (default: the model config's)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--greedy", action="store_true", help="argmax decoding, no sampling noise")
    evaluate.add_argument("--batch-size", type=_positive_int, default=8)
    evaluate.add_argument(
        "--occlusion-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="count only these occlusion rates"
    )
    evaluate.add_argument("--max-objects", type=_positive_int, help="evaluate only the first N objects")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json, metrics.md, the chart")
    evaluate.add_argument(
        "--save-predictions",
        action="store_true",
        help=f"also write every model prediction (full-size amodal mask as COCO RLE, score) to {PREDICTIONS_FILE}",
    )
    evaluate.set_defaults(handler=run_evaluate)


def _model_path(model: str | None) -> str:
    """`--model`, or the shipped default; a path that is not a folder (nor a Hub id `name` / `namespace/name`) is a
    ValueError naming it."""
    if model is not None:
        is_hub_id = not model.startswith((".", "/", "~")) and model.count("/") <= 1
        if not Path(model).is_dir() and not is_hub_id:
            raise ValueError(f"{model}: no such model folder (and not a Hub id of the form namespace/name)")
        return model
    try:
        return str(default_model_path())
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--model not given and {error}") from error


def _image_processor(model_path: str, model_config) -> C2FSegImageProcessor:
    """The model folder's (or Hub repo's) saved processor, or, when there is none (e.g. a bare `save_pretrained`
    of the model), the default one for the model's crop size with a warning."""
    try:
        processor = C2FSegImageProcessor.from_pretrained(model_path)
    except OSError:
        processor = None
    return C2FSegImageProcessor.for_model(processor, model_config, model_path)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate with the model folder's saved image processor, write the report (and, with `--save-predictions`,
    the predictions) into `args.out` and print its Markdown."""
    dataset = load_amodal_dataset(args.dataset, args.split, revision=args.revision)
    model_path = _model_path(args.model)
    model = C2FSegForAmodalSegmentation.from_pretrained(model_path)
    image_processor = _image_processor(model_path, model.config)
    predictions = [] if args.save_predictions else None
    results = evaluate_model(
        model,
        dataset,
        image_processor=image_processor,
        batch_size=args.batch_size,
        num_steps=args.num_steps,
        seed=args.seed,
        greedy=args.greedy,
        visible_source=args.visible_source,
        occlusion_range=args.occlusion_range,
        max_objects=args.max_objects,
        device="cuda" if torch.cuda.is_available() else "cpu",
        predictions=predictions,
    )
    if results.num_objects_counted == 0:
        raise ValueError(
            f"no object was evaluated ({results.num_objects_added} in split {args.split!r} of "
            f"{args.dataset}, {results.num_objects_counted} inside the occlusion range): no metrics to report"
        )
    results.run_settings["dataset"] = args.dataset
    results.run_settings["dataset_revision"] = args.revision
    paths = write_report(results, args.out)
    if predictions is not None:
        paths["predictions"] = args.out / PREDICTIONS_FILE
        paths["predictions"].write_text(json.dumps(predictions) + "\n", encoding="utf-8")
    logger.info("wrote %s", {kind: str(path) for kind, path in paths.items()})
    print(format_markdown(results))
    return 0


__all__ = ["add_cli_commands", "run_evaluate"]
