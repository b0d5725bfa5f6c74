"""Hub export and upload (`c2f-hf export`, `c2f-hf push`).

`export_model` turns a `save_pretrained` folder into a complete Hub model repo folder: safetensors weights,
`config.json` (with the `auto_map` and `custom_pipelines` entries that `trust_remote_code` reads),
`preprocessor_config.json`, the model, processor and pipeline modules (copied by `transformers`, relative imports
only) and `README.md` (the card of `c2f_hf.cards`). The folder then loads where `c2f_hf` is not installed:

    pipeline("amodal-segmentation", model=REPO, trust_remote_code=True)

`push_folder` uploads such a folder with `HfApi.create_repo(exist_ok=True)` and `HfApi.upload_folder`; the token
comes from the usual places (`HF_TOKEN`, `hf auth login`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi
from transformers import pipeline

from .cards import EvaluationSource, ModelCardInputs, build_model_card, is_converted_folder
from .checkpoints import DEFAULT_MODEL_NAME
from .image_processing_c2f_seg import C2FSegImageProcessor
from .modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)

TASK = "amodal-segmentation"
CODE_FILES = (
    "configuration_c2f_seg.py",
    "modeling_c2f_seg.py",
    "maskgit.py",
    "image_processing_c2f_seg.py",
    "pipeline_amodal_segmentation.py",
)
REQUIRED_FILES = ("config.json", "preprocessor_config.json", "README.md", *CODE_FILES)
SYNTHETIC_LIMITATION = (
    "Trained on synthetic shapes only (`c2f_hf.data.synthetic`): expect useful masks on simple shapes and poor "
    "ones on real photographs."
)
_PACKAGE_IMPORT = re.compile(r"^\s*(from|import)\s+c2f_hf\b", re.MULTILINE)


@dataclass(frozen=True)
class ExportOptions:
    """What `c2f-hf export` passes on to the card (see `cards.ModelCardInputs`); every text is used verbatim.

    `repo_id` is the Hub id the card's snippets load from (None: the export folder's path). `converted` None
    detects converted weights from the source folder's card. `synthetic_only` None means "only for the shipped
    default model".
    """

    repo_id: str | None = None
    model_name: str | None = None
    training_data: str | None = None
    training_command: str | None = None
    datasets: Sequence[str] = ()
    evaluation: EvaluationSource | None = None
    converted: bool | None = None
    synthetic_only: bool | None = None
    limitations: Sequence[str] = ()


def _check_model_folder(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"MODEL_DIR: {model_dir} is not a save_pretrained folder (it has no config.json)")


def _check_export_folder(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"--out: {out_dir} exists and is not an empty folder; choose a new one")


def _load_processor(model_dir: Path, image_size: int) -> C2FSegImageProcessor:
    if (model_dir / "preprocessor_config.json").is_file():
        return C2FSegImageProcessor.from_pretrained(model_dir)
    logger.warning(
        "%s has no preprocessor_config.json; using the default processor for %d-pixel crops", model_dir, image_size
    )
    return C2FSegImageProcessor(crop_resolution=image_size)


def missing_files(repo_dir: str | Path) -> list[str]:
    """The files an exported repo needs that `repo_dir` lacks (weights count as one `*.safetensors` entry)."""
    repo_dir = Path(repo_dir)
    missing = [name for name in REQUIRED_FILES if not (repo_dir / name).is_file()]
    if not any(repo_dir.glob("*.safetensors")):
        missing.append("*.safetensors")
    return missing


def check_remote_code(repo_dir: str | Path) -> None:
    """Raise ValueError unless `repo_dir` loads without `c2f_hf`: auto_map and custom_pipelines entries present,
    no copied module importing the package by name."""
    repo_dir = Path(repo_dir)
    problems = [f"missing {name}" for name in missing_files(repo_dir) if name != "README.md"]
    if not problems:
        config = json.loads((repo_dir / "config.json").read_text(encoding="utf-8"))
        processor = json.loads((repo_dir / "preprocessor_config.json").read_text(encoding="utf-8"))
        if not {"AutoConfig", "AutoModel"} <= set(config.get("auto_map", {})):
            problems.append("config.json auto_map lacks AutoConfig/AutoModel")
        if TASK not in config.get("custom_pipelines", {}):
            problems.append(f"config.json custom_pipelines lacks {TASK!r}")
        if "AutoImageProcessor" not in processor.get("auto_map", {}):
            problems.append("preprocessor_config.json auto_map lacks AutoImageProcessor")
        problems += [
            f"{path.name} imports c2f_hf" for path in repo_dir.glob("*.py") if _PACKAGE_IMPORT.search(path.read_text())
        ]
    if problems:
        raise ValueError(f"{repo_dir} would not load with trust_remote_code: " + "; ".join(problems))


def _card_inputs(model_dir: Path, out_dir: Path, options: ExportOptions) -> ModelCardInputs:
    converted = is_converted_folder(model_dir) if options.converted is None else options.converted
    synthetic_only = options.synthetic_only
    if synthetic_only is None:
        synthetic_only = model_dir.name == DEFAULT_MODEL_NAME
    limitations = ([SYNTHETIC_LIMITATION] if synthetic_only else []) + list(options.limitations)
    return ModelCardInputs(
        model_id=options.repo_id or str(out_dir),
        model_name=options.model_name or model_dir.resolve().name,
        training_data=options.training_data,
        training_command=options.training_command,
        datasets=tuple(options.datasets),
        evaluation=options.evaluation,
        converted=converted,
        extra_limitations=tuple(limitations),
    )


def export_model(model_dir: str | Path, out_dir: str | Path, options: ExportOptions | None = None) -> list[Path]:
    """Write the Hub repo folder `out_dir` (new or empty) for the model in `model_dir`; return its files."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    options = options or ExportOptions()
    _check_model_folder(model_dir)
    _check_export_folder(out_dir)
    card_inputs = _card_inputs(model_dir, out_dir, options)
    card = build_model_card(model_dir, card_inputs)
    model = C2FSegForAmodalSegmentation.from_pretrained(model_dir)
    processor = _load_processor(model_dir, model.config.image_size)
    segmenter = pipeline(TASK, model=model, image_processor=processor, trust_remote_code=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    segmenter.save_pretrained(out_dir)
    card.save(out_dir / "README.md")
    check_remote_code(out_dir)
    return sorted(path for path in out_dir.iterdir() if path.is_file())


def push_folder(
    repo_dir: str | Path,
    repo_id: str,
    private: bool = False,
    commit_message: str = "Upload C2F-Seg model",
    api: HfApi | None = None,
) -> str:
    """Create the model repo `repo_id` if needed and upload `repo_dir` (an exported folder); return the commit URL.

    Raises ValueError when `repo_dir` misses a file an exported repo needs (nothing is uploaded then).
    """
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        raise ValueError(f"REPO_DIR: {repo_dir} is not a folder")
    missing = missing_files(repo_dir)
    if missing:
        raise ValueError(f"REPO_DIR: {repo_dir} is not an exported repo, it lacks {missing}; run c2f-hf export first")
    if repo_id not in (repo_dir / "README.md").read_text(encoding="utf-8"):
        logger.warning("README.md's snippets do not load from %r: re-export with --repo-id %s", repo_id, repo_id)
    api = api or HfApi()
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(repo_dir), repo_id=repo_id, repo_type="model", commit_message=commit_message
    )
    return str(getattr(commit, "commit_url", commit))


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
    try:
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
        )
        written = export_model(args.model_dir, args.out, options)
    except ValueError as error:
        raise SystemExit(f"export: {error}") from error
    for path in written:
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    """`c2f-hf push`: upload the folder and print the commit URL."""
    try:
        url = push_folder(args.repo_dir, args.repo_id, args.private, args.commit_message)
    except ValueError as error:
        raise SystemExit(f"push: {error}") from error
    print(url)
    return 0


def _add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="build a Hub model repo folder (weights, remote code, card)")
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
    push = subparsers.add_parser("push", help="upload an exported repo folder to the Hugging Face Hub")
    push.add_argument("repo_dir", type=Path, metavar="REPO_DIR", help="folder written by c2f-hf export")
    push.add_argument("--repo-id", required=True, help="Hub model repo id, e.g. user/c2f-seg-synthetic-tiny")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--commit-message", default="Upload C2F-Seg model")
    push.set_defaults(handler=run_push)


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `export` and `push`."""
    _add_export_parser(subparsers)
    _add_push_parser(subparsers)


__all__ = ["ExportOptions", "check_remote_code", "export_model", "missing_files", "push_folder"]
