"""Hub export (`c2f-hf export`): `export_model` turns a `save_pretrained` folder into a complete Hub model repo
folder: safetensors weights, `config.json` (with the `auto_map` and `custom_pipelines` entries that
`trust_remote_code` reads), `preprocessor_config.json`, the model, processor and pipeline modules (copied by
`transformers`, relative imports only) and `README.md` (the card of `hub.cards`). The folder then loads where
`c2f_hf` is not installed:

    pipeline("amodal-segmentation", model=REPO, trust_remote_code=True)
    pipeline("video-amodal-segmentation", model=REPO, trust_remote_code=True)  # a video model's repo

The task follows the model: a video model (`transformer_config.num_frames` set) gets the video pipeline.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import pipeline

from ..checkpoints import DEFAULT_MODEL_NAME
from ..models import c2f_seg as bundle
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from .cards import ConversionRecord, EvaluationSource, ModelCardInputs, build_model_card, is_converted_folder

TASK = "amodal-segmentation"
VIDEO_TASK = "video-amodal-segmentation"
BUNDLE_DIR = Path(bundle.__file__).parent


def bundle_code_files() -> tuple[str, ...]:
    """The modules of the model bundle (`c2f_hf/models/c2f_seg/`) that an exported repo carries: all of them but
    the package `__init__.py` and the `convert_*` scripts, which only this package runs."""
    return tuple(
        sorted(
            path.name
            for path in BUNDLE_DIR.glob("*.py")
            if path.name != "__init__.py" and not path.name.startswith("convert_")
        )
    )


CODE_FILES = bundle_code_files()
REQUIRED_FILES = ("config.json", "preprocessor_config.json", "README.md", *CODE_FILES)
SYNTHETIC_LIMITATION = (
    "Trained on synthetic shapes only (`c2f_hf.data.synthetic`): expect useful masks on simple shapes and poor "
    "ones on real photographs."
)
_PACKAGE_IMPORT = re.compile(r"^\s*(from|import)\s+c2f_hf\b", re.MULTILINE)


@dataclass(frozen=True)
class ExportOptions:
    """What `c2f-hf export` passes on to the card (see `cards.ModelCardInputs`); every text is used verbatim.

    `repo_id` is the Hub id the card's snippets load from (None: the export folder's name, relative to its parent,
    so no local path is written into the repo). `converted` None
    detects converted weights from the source folder's card. `synthetic_only` None means "only for the shipped
    default model". `conversion` is what `c2f-hf convert-original` read, for the card of the weights it converts.
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
    base_model: str | None = None
    conversion: ConversionRecord | None = None


def _check_model_folder(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"MODEL_DIR: {model_dir} is not a save_pretrained folder (it has no config.json)")


def check_new_folder(folder: Path, argument: str = "--out") -> None:
    """Raise ValueError naming `argument` unless `folder` is new or an empty folder (nothing gets overwritten)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{argument}: {folder} exists and is not an empty folder; choose a new one")


def _load_processor(model_dir: Path, model_config) -> C2FSegImageProcessor:
    """The folder's saved processor, or (none saved) the default for the model's crop size, with a warning."""
    saved = model_dir / "preprocessor_config.json"
    processor = C2FSegImageProcessor.from_pretrained(model_dir) if saved.is_file() else None
    return C2FSegImageProcessor.for_model(processor, model_config, str(model_dir))


def model_task(config: dict) -> str:
    """The pipeline task of a model from its `config.json` contents: the video task for a video model."""
    return VIDEO_TASK if (config.get("transformer_config") or {}).get("num_frames") else TASK


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
        task = model_task(config)
        if task not in config.get("custom_pipelines", {}):
            problems.append(f"config.json custom_pipelines lacks {task!r}")
        if "AutoImageProcessor" not in processor.get("auto_map", {}):
            problems.append("preprocessor_config.json auto_map lacks AutoImageProcessor")
        problems += [
            f"{path.name} imports c2f_hf" for path in repo_dir.glob("*.py") if _PACKAGE_IMPORT.search(path.read_text())
        ]
    if problems:
        raise ValueError(f"{repo_dir} would not load with trust_remote_code: " + "; ".join(problems))


# The classes an exported repo names in its `auto_map`, and the Auto class each stands for.
REMOTE_CODE_CLASSES = {
    C2FSegConfig: "AutoConfig",
    C2FSegForAmodalSegmentation: "AutoModel",
    C2FSegImageProcessor: "AutoImageProcessor",
}


@contextmanager
def marked_for_remote_code() -> Iterator[None]:
    """Within the block, `save_pretrained` writes the `auto_map` entries `trust_remote_code` reads
    (`register_for_auto_class` on `REMOTE_CODE_CLASSES`); after it, plain folders hold none again, so a folder
    saved outside an export loads without a `trust_remote_code` question."""
    for cls, auto_class in REMOTE_CODE_CLASSES.items():
        cls.register_for_auto_class(auto_class)
    try:
        yield
    finally:
        for cls in REMOTE_CODE_CLASSES:
            cls._auto_class = None


def drop_pipeline_default(config_path: Path, task: str) -> None:
    """Remove the `default` model of `custom_pipelines[task]` from a saved `config.json`: `save_pretrained` writes
    the registered default there, the shipped model's path in this installation, which means nothing elsewhere
    (a repo is loaded with `model=REPO`, so its pipeline needs no default)."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["custom_pipelines"][task].pop("default", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _card_inputs(model_dir: Path, out_dir: Path, options: ExportOptions) -> ModelCardInputs:
    converted = is_converted_folder(model_dir) if options.converted is None else options.converted
    synthetic_only = options.synthetic_only
    if synthetic_only is None:
        synthetic_only = model_dir.name == DEFAULT_MODEL_NAME
    limitations = ([SYNTHETIC_LIMITATION] if synthetic_only else []) + list(options.limitations)
    return ModelCardInputs(
        model_id=options.repo_id or out_dir.name,
        model_name=options.model_name or model_dir.resolve().name,
        training_data=options.training_data,
        training_command=options.training_command,
        datasets=tuple(options.datasets),
        evaluation=options.evaluation,
        converted=converted,
        extra_limitations=tuple(limitations),
        base_model=options.base_model,
        conversion=options.conversion,
    )


def export_model(model_dir: str | Path, out_dir: str | Path, options: ExportOptions | None = None) -> list[Path]:
    """Write the Hub repo folder `out_dir` (new or empty) for the model in `model_dir`; return its files."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    options = options or ExportOptions()
    _check_model_folder(model_dir)
    check_new_folder(out_dir)
    card_inputs = _card_inputs(model_dir, out_dir, options)
    card = build_model_card(model_dir, card_inputs)
    model = C2FSegForAmodalSegmentation.from_pretrained(model_dir, dtype=torch.float32)
    processor = _load_processor(model_dir, model.config)
    task = model_task(model.config.to_dict())
    segmenter = pipeline(task, model=model, image_processor=processor, trust_remote_code=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    with marked_for_remote_code():
        segmenter.save_pretrained(out_dir)
    drop_pipeline_default(out_dir / "config.json", task)
    for name in CODE_FILES:
        shutil.copyfile(BUNDLE_DIR / name, out_dir / name)
    card.save(out_dir / "README.md")
    check_remote_code(out_dir)
    return sorted(path for path in out_dir.iterdir() if path.is_file())


__all__ = [
    "ExportOptions",
    "check_new_folder",
    "check_remote_code",
    "export_model",
    "marked_for_remote_code",
    "missing_files",
    "model_task",
]
