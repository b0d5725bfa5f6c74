"""`c2f-hf evaluate` (load a model folder and its saved image processor, run `evaluate_model`, write the report) and
`c2f-hf predict` (`predict_dataset`: every object's amodal mask, written as a dataset). Both run on one process,
or on every process of a launcher (`torchrun`, `accelerate launch`; `evaluation.distributed`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from ..checkpoints import default_model_path, file_sha256
from ..data.schema import DATASET_SOURCE_HELP, REVISION_HELP, load_amodal_dataset, local_split_files
from ..data.transforms import CROP_SOURCES, VISIBLE_SOURCES
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from ..models.c2f_seg.video_processing_c2f_seg import CLIP_MODES
from .accumulator import EvaluationResults
from .distributed import Processes, launched_processes
from .predict import PredictionRun, predict_dataset
from .report import format_markdown, write_report
from .runner import InferenceOptions, check_input_options, evaluate_model

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"
# `--dtype`: what `from_pretrained` is given ("auto" is what `pipeline()` passes).
MODEL_DTYPES = {"auto": "auto", "float32": torch.float32}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate` and `predict` (their one-line help is `c2f_hf.cli.COMMANDS`')."""
    evaluate = subparsers.add_parser("evaluate")
    _add_run_options(evaluate, visible_source_help="model input masks")
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
    _add_input_options(evaluate)
    evaluate.set_defaults(handler=run_evaluate)
    _add_predict(subparsers)


def _add_run_options(parser: argparse.ArgumentParser, visible_source_help: str) -> None:
    """The model, data and decoding options shared by `evaluate` and `predict`."""
    parser.add_argument("--model", help="save_pretrained folder or Hub id (default: the shipped default model)")
    parser.add_argument("--dataset", required=True, help=DATASET_SOURCE_HELP)
    parser.add_argument("--revision", help=REVISION_HELP)
    parser.add_argument("--split", default="test")
    parser.add_argument("--visible-source", choices=VISIBLE_SOURCES, default="gt", help=visible_source_help)
    parser.add_argument("--num-steps", type=_positive_int, help="MaskGIT steps K (default: the model config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true", help="argmax decoding, no sampling noise")
    parser.add_argument(
        "--dtype",
        choices=MODEL_DTYPES,
        default="auto",
        help="auto (default): from_pretrained's fast path for this machine, bf16 on CPUs with AMX or AVX512-BF16 for "
        "models of the tiny preset's size and up; float32: the reference computation, whose masks do not depend "
        "on how objects are batched",
    )


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """`--crop-from` and `--clip-mode`, shared by `evaluate` and `predict` (`runner.InferenceOptions`)."""
    parser.add_argument(
        "--crop-from",
        choices=CROP_SOURCES,
        default="visible",
        help="crop image objects from their visible mask (default, as the pipelines) or from their ground-truth "
        "amodal mask (the authors' rule for COCOA's ground-truth objects; needs --visible-source gt)",
    )
    parser.add_argument(
        "--clip-mode",
        choices=CLIP_MODES,
        default="windows",
        help="video models: overlapping windows of T frames (default) or the whole clip as one rolled sequence "
        "(the authors' FISHBOWL test mode)",
    )


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    """Add `predict` (its one-line help is `c2f_hf.cli.COMMANDS`')."""
    predict = subparsers.add_parser("predict")
    _add_run_options(
        predict,
        visible_source_help="complete the objects from their visible masks (gt) or every pre-detected visible mask "
        "(predicted)",
    )
    predict.add_argument("--batch-size", type=_positive_int, default=8, help="objects per forward pass")
    predict.add_argument(
        "--rows-per-shard", type=_positive_int, default=1000, help="rows per Parquet shard (the unit of resuming)"
    )
    predict.add_argument(
        "--out", type=Path, required=True, help="output folder; run the same command again to resume a killed run"
    )
    _add_input_options(predict)
    predict.set_defaults(handler=run_predict)


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


def run_device(processes: Processes) -> torch.device:
    """Where this process runs the model: its launcher-given device, else the GPU when there is one."""
    return processes.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(model: str | None, dtype: str = "auto") -> tuple[str, C2FSegForAmodalSegmentation, C2FSegImageProcessor]:
    """`--model` (or the shipped default): its path or Hub id, the model loaded with `--dtype` (one of
    `MODEL_DTYPES`) and its saved image processor."""
    model_path = _model_path(model)
    loaded = C2FSegForAmodalSegmentation.from_pretrained(model_path, dtype=MODEL_DTYPES[dtype])
    return model_path, loaded, _image_processor(model_path, loaded.config)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate with the model folder's saved image processor, write the report (and, with `--save-predictions`,
    the predictions) into `args.out` and print its Markdown. Under a launcher (`torchrun`, `accelerate launch`)
    every process evaluates its share of the objects and the main process writes the report."""
    dataset = load_amodal_dataset(args.dataset, args.split, revision=args.revision)
    model_path, model, image_processor = load_model(args.model, args.dtype)
    predictions = [] if args.save_predictions else None
    with launched_processes() as processes:
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
            device=run_device(processes),
            predictions=predictions,
            processes=processes,
            crop_from=args.crop_from,
            clip_mode=args.clip_mode,
        )
        if processes.is_main:
            _write_results(results, args, predictions)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Predict every object's amodal mask of a dataset split into `args.out` (`predict_dataset`), on every process
    of a launcher's run."""
    check_input_options(args.crop_from, args.clip_mode, args.visible_source)
    dataset = load_amodal_dataset(args.dataset, args.split, revision=args.revision)
    model_path, model, image_processor = load_model(args.model, args.dtype)
    run = PredictionRun(
        out_dir=args.out,
        split=args.split,
        visible_source=args.visible_source,
        options=InferenceOptions(args.num_steps, args.seed, args.greedy, args.crop_from, args.clip_mode),
        batch_size=args.batch_size,
        rows_per_shard=args.rows_per_shard,
        settings=_prediction_settings(args, model_path, model, image_processor, dataset.num_rows),
        command=_predict_command(args, model_path),
    )
    with launched_processes() as processes:
        model.to(run_device(processes))
        paths = predict_dataset(model, dataset, run, image_processor=image_processor, processes=processes)
    if processes.is_main:
        logger.info("wrote %d shards into %s", len(paths), args.out)
    return 0


def _source_name(source: str) -> str:
    """A model or dataset as a card names it: a local folder by its name (no path of this machine), a Hub id as is."""
    return Path(source).name if Path(source).is_dir() else source


def _prediction_settings(
    args: argparse.Namespace,
    model_path: str,
    model: C2FSegForAmodalSegmentation,
    image_processor: C2FSegImageProcessor,
    num_rows: int,
) -> dict:
    """Every setting that changes `c2f-hf predict`'s output, with the SHA-256 of a local model's weights and a
    local dataset split's files (a Hub id is named with its revision). The batch size is one: the model's
    floating-point rounding may differ with it (the number of processes is not: batches stay the same)."""
    settings = {"model": _source_name(model_path)}
    if Path(model_path).is_dir():
        weights = sorted(Path(model_path).glob("*.safetensors"))
        settings["model_sha256"] = {path.name: file_sha256(path) for path in weights}
    settings.update(dataset=_source_name(args.dataset), dataset_revision=args.revision, split=args.split)
    if Path(args.dataset).is_dir():
        files = local_split_files(Path(args.dataset), args.split)
        settings["dataset_sha256"] = {path.name: file_sha256(path) for path in files}
    settings.update(
        dataset_rows=num_rows,
        visible_source=args.visible_source,
        crop_from=args.crop_from,
        clip_mode=args.clip_mode,
        num_steps=args.num_steps or model.config.num_sampling_steps,
        seed=args.seed,
        greedy=args.greedy,
        dtype=str(model.dtype).removeprefix("torch."),
        batch_size=args.batch_size,
        rows_per_shard=args.rows_per_shard,
        crop_size=image_processor.crop_resolution,
        enlarge_ratio=image_processor.enlarge_ratio,
        second_crop_ratio=image_processor.second_crop_ratio,
        mask_threshold=image_processor.mask_threshold,
    )
    return settings


def _predict_command(args: argparse.Namespace, model_path: str) -> str:
    """The `c2f-hf predict` command line of this run as the card shows it: folders by name, defaults spelled out."""
    words = ["c2f-hf predict", f"--model {_source_name(model_path)}", f"--dataset {_source_name(args.dataset)}"]
    words += [f"--revision {args.revision}"] if args.revision else []
    words += [f"--split {args.split}", f"--visible-source {args.visible_source}", f"--seed {args.seed}"]
    words += [f"--crop-from {args.crop_from}", f"--clip-mode {args.clip_mode}", f"--dtype {args.dtype}"]
    words += ["--greedy"] if args.greedy else []
    words += [f"--num-steps {args.num_steps}"] if args.num_steps else []
    words += [f"--batch-size {args.batch_size}", f"--rows-per-shard {args.rows_per_shard}", f"--out {args.out.name}"]
    return " ".join(words)


def _write_results(results: EvaluationResults, args: argparse.Namespace, predictions: list[dict] | None) -> None:
    """Write the report (and the predictions) into `args.out` and print its Markdown; ValueError when no object
    was counted."""
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


__all__ = ["add_cli_commands", "run_evaluate", "run_predict"]
