"""Model and Space cards (README.md with YAML front matter) for exported C2F-Seg repos and the Gradio demo.

The templates are `templates/model_card.md` and `templates/space_card.md` beside this module; `huggingface_hub`'s
`ModelCard.from_template` / `SpaceCard.from_template` render them. Everything a card states about training and
evaluation is passed in by the caller (commands, data, `metrics.json`); nothing is invented. Results become the
card's `model-index` (shown on the Hub) and a table that also lists the two baselines, so a reader can judge the
model against them. Weights converted from the authors' release (`c2f-hf convert-original`) get the same card, with
a conversion section that names the source files (SHA-256), the yml settings read and any ignored parameters.
`card.validate()` contacts the Hub and is never called here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData, SpaceCard, SpaceCardData
from safetensors import safe_open

from ..checkpoints import file_sha256
from ..evaluation.accumulator import EvaluationResults
from ..evaluation.baselines import (
    CONVEX_HULL_BASELINE,
    RESTRICTED_TO_OCCLUDERS_SUFFIX,
    UNION_WITH_VISIBLE_SUFFIX,
    VISIBLE_BASELINE,
)
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig

MODEL_VARIANT = "model"
CARD_TAGS = ("amodal-segmentation", "c2f-seg", "image-segmentation", "mask-completion", "maskgit", "vq-gan")
VIDEO_CARD_TAGS = (
    "amodal-segmentation",
    "c2f-seg",
    "video-amodal-segmentation",
    "video-object-segmentation",
    "video",
    "mask-completion",
    "maskgit",
    "vq-gan",
)
CODE_LICENCE = "apache-2.0"
AUTHORS_REPOSITORY = "https://github.com/amazon-science/c2f-seg"
MIN_TRANSFORMERS = "5.21"  # `SubConfigSpec.create_subconfig`, which the configurations use
CONVERTED_MARKER = "converted from the authors' release"
VARIANT_TITLES = {
    MODEL_VARIANT: "this model",
    MODEL_VARIANT + UNION_WITH_VISIBLE_SUFFIX: "this model ∪ input visible mask",
    MODEL_VARIANT + RESTRICTED_TO_OCCLUDERS_SUFFIX: "this model, hidden parts only behind other objects",
    VISIBLE_BASELINE: "baseline: visible mask",
    CONVEX_HULL_BASELINE: "baseline: convex hull of the visible mask",
}


@dataclass(frozen=True)
class EvaluationSource:
    """Where a `metrics.json` came from: the dataset it measured and the exact command that measured it.

    `dataset_name` is shown to readers ("synthetic shapes, test split"); `dataset_type` is the Hub dataset id or
    a short slug; `split` is the split evaluated.
    """

    metrics_path: Path
    dataset_name: str
    dataset_type: str
    command: str
    split: str | None = None


@dataclass(frozen=True)
class ConversionRecord:
    """What `c2f-hf convert-original` read: `source_files` `{role: file}` (e.g. `"VQ checkpoint": vqgan_KINS.pth`),
    the yml `settings` it used (`{"<file name>: <yml key>": value}`) and the `ignored` extra parameters of the
    authors' state dicts (`--allow-unexpected`)."""

    source_files: Mapping[str, Path]
    settings: Mapping[str, Any]
    ignored: Sequence[str] = ()


@dataclass(frozen=True)
class ModelCardInputs:
    """What the caller knows about an exported model; each text is used verbatim.

    Attributes:
        model_id: Hub id (or path) the usage snippets load from.
        model_name: title of the card and `model-index` name.
        training_data: prose on the training data (None: "not given").
        training_command: the exact command that trained the weights (None: "not given").
        datasets: Hub dataset ids for the card metadata.
        evaluation: the measured results and their provenance, or None.
        converted: True when the weights are converted from the authors' checkpoints (their licence applies).
        extra_limitations: further bullet points for the limitations section.
        base_model: the Hub id of the model these weights were fine-tuned from, when they were.
        conversion: what the conversion of the authors' files read, for converted weights.
    """

    model_id: str
    model_name: str
    training_data: str | None = None
    training_command: str | None = None
    datasets: Sequence[str] = ()
    evaluation: EvaluationSource | None = None
    converted: bool = False
    extra_limitations: Sequence[str] = field(default_factory=tuple)
    base_model: str | None = None
    conversion: ConversionRecord | None = None


def load_metrics(path: str | Path) -> EvaluationResults:
    """Read a `metrics.json` written by `c2f_hf.evaluation.write_report`.

    Raises ValueError naming the file when it is not such a report or lacks the model's numbers.
    """
    path = Path(path)
    try:
        results = EvaluationResults.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"metrics: {path} is not a metrics.json written by write_report ({error!r})") from error
    if MODEL_VARIANT not in results.variants:
        raise ValueError(f"metrics: {path} has no {MODEL_VARIANT!r} variant, got {sorted(results.variants)}")
    return results


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def eval_results(results: EvaluationResults, source: EvaluationSource) -> list[EvalResult]:
    """The `model-index` entries: mIoU_full and mIoU_occ (percent) of this model (and of its union with the
    visible mask when measured). Baselines are not this model's results, so they stay in the card's table."""
    entries = []
    for variant in (MODEL_VARIANT, MODEL_VARIANT + UNION_WITH_VISIBLE_SUFFIX):
        metrics = results.variants.get(variant)
        if metrics is None:
            continue
        suffix = "" if variant == MODEL_VARIANT else " (∪ visible mask)"
        for metric, value in (("mIoU_full", metrics.miou_full), ("mIoU_occ", metrics.miou_occ)):
            if value is None:
                continue
            entries.append(
                EvalResult(
                    task_type="image-segmentation",
                    task_name="Amodal segmentation",
                    dataset_type=source.dataset_type,
                    dataset_name=source.dataset_name,
                    dataset_split=source.split,
                    metric_type="mean_iou",
                    metric_name=f"{metric} (%){suffix}",
                    metric_value=_percent(value),
                )
            )
    return entries


def _format_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f}"


def results_table(results: EvaluationResults) -> str:
    """Markdown table of mIoU_full / mIoU_occ (percent) for the model, its union variant and both baselines."""
    lines = ["| prediction | mIoU_full (%) | mIoU_occ (%) | objects | occluded objects |", "|---|---:|---:|---:|---:|"]
    for variant, metrics in results.variants.items():
        title = VARIANT_TITLES.get(variant, variant)
        lines.append(
            f"| {title} | {_format_percent(metrics.miou_full)} | {_format_percent(metrics.miou_occ)} "
            f"| {metrics.num_objects} | {metrics.num_occluded_objects} |"
        )
    return "\n".join(lines)


def _counted_objects(results: EvaluationResults) -> str:
    if results.occlusion_range is None:
        scope = "all objects"
    else:
        low, high = results.occlusion_range
        scope = f"objects with occlusion rate in [{low:.0%}, {high:.0%}]"
    return (
        f"{results.num_objects_counted} objects counted of {results.num_objects_added} "
        f"({results.num_images} images; {scope})"
    )


def evaluation_section(evaluation: EvaluationSource | None) -> str:
    """The card's evaluation text: the measured table and the command that measured it, or a plain note."""
    if evaluation is None:
        return "No evaluation results were given when this card was written."
    results = load_metrics(evaluation.metrics_path)
    split = f", split `{evaluation.split}`" if evaluation.split else ""
    return "\n".join(
        [
            f"Measured on {evaluation.dataset_name}{split}: {_counted_objects(results)}.",
            "",
            results_table(results),
            "",
            "mIoU_full is the mean IoU of the predicted and true amodal masks; mIoU_occ the mean IoU over the",
            "occluded region (amodal minus visible), averaged only over objects that are occluded.",
            "",
            "Evaluation command:",
            "",
            _command_block(evaluation.command),
        ]
    )


def _command_block(command: str | None) -> str:
    if command is None:
        return "Not given when this card was written."
    return f"```bash\n{command}\n```"


def _parameter_count(model_dir: Path) -> str:
    """Number of weights in the folder's safetensors files, read from their headers (no tensor is loaded)."""
    total = 0
    for weights in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(weights), framework="pt") as handle:
            total += sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return f"{total / 1e6:.2f} M" if total else "unknown"


def _origin_text(converted: bool) -> str:
    if converted:
        return (
            f"The weights were {CONVERTED_MARKER} ([{AUTHORS_REPOSITORY}]({AUTHORS_REPOSITORY})) with "
            "`c2f-hf convert-original`: every tensor copied unchanged under a new name."
        )
    return "The weights were trained with the `c2f_hf` training loops (`c2f-hf train-vq`, then `c2f-hf train`)."


def conversion_section(conversion: ConversionRecord) -> str:
    """The card's conversion text: the source files with their SHA-256, the yml settings read and the ignored
    extra parameters."""
    files = [f"| {role} | `{path.name}` | `{file_sha256(path)}` |" for role, path in conversion.source_files.items()]
    settings = [f"| `{key}` | `{value}` |" for key, value in conversion.settings.items()]
    ignored = [f"- `{entry}`" for entry in conversion.ignored] or ["None."]
    return "\n".join(
        [
            "The key table is `ORIGINAL_KEY_MAPPING` in `c2f_hf/models/c2f_seg/convert_original_checkpoint.py`; the",
            "ResNet classifier `fc` of the authors' image encoder is dropped.",
            "",
            "| role | file | SHA-256 |",
            "|------|------|---------|",
            *files,
            "",
            "Settings read from the yml files:",
            "",
            "| setting | value |",
            "|---------|-------|",
            *settings,
            "",
            "Extra parameters of the authors' state dicts ignored (`--allow-unexpected`):",
            "",
            *ignored,
        ]
    )


def licence_text(converted: bool) -> str:
    """The licence section: our code is Apache-2.0; converted weights keep the authors' licence (Apache-2.0)."""
    code = "The model code (`c2f_hf`, copied into this repo for `trust_remote_code`) is licensed under Apache-2.0."
    if converted:
        return (
            f"{code} The weights are converted from the C2F-Seg authors' release, which is licensed under "
            f"Apache-2.0 ([{AUTHORS_REPOSITORY}]({AUTHORS_REPOSITORY})); the terms of the data they were trained on "
            "(e.g. KITTI for KINS, COCO for COCOA) also apply."
        )
    return f"{code} The weights were trained with `c2f_hf` and are released under Apache-2.0 as well."


def model_card_data(inputs: ModelCardInputs, video: bool = False) -> ModelCardData:
    """The YAML front matter: library, pipeline tag, tags, datasets, model-index. The Hub has no amodal task: an
    image model is tagged `image-segmentation`; a video model gets no pipeline tag (the Hub has no video
    segmentation task either) and the video tags (`VIDEO_CARD_TAGS`)."""
    evaluation = inputs.evaluation
    results = [] if evaluation is None else eval_results(load_metrics(evaluation.metrics_path), evaluation)
    return ModelCardData(
        model_name=inputs.model_name,
        library_name="transformers",
        pipeline_tag=None if video else "image-segmentation",
        tags=list(VIDEO_CARD_TAGS if video else CARD_TAGS),
        license=CODE_LICENCE,
        base_model=inputs.base_model,
        datasets=list(inputs.datasets) or None,
        metrics=["mean_iou"] if results else None,
        eval_results=results or None,
    )


def build_model_card(model_dir: str | Path, inputs: ModelCardInputs) -> ModelCard:
    """The model card of a `save_pretrained` folder `model_dir` (its config gives the architecture table)."""
    model_dir = Path(model_dir)
    config = C2FSegConfig.from_pretrained(model_dir)
    template = files(__package__).joinpath("templates").joinpath("model_card.md").read_text(encoding="utf-8")
    transformer = config.transformer_config
    return ModelCard.from_template(
        model_card_data(inputs, video=transformer.num_frames is not None),
        template_str=template,
        model_name=inputs.model_name,
        model_id=inputs.model_id,
        origin=_origin_text(inputs.converted),
        image_size=config.image_size,
        token_grid=int(round(transformer.sequence_length**0.5)),
        codebook_size=config.vq_config.codebook_size,
        vocabulary_size=transformer.vocab_size,
        num_layers=transformer.num_hidden_layers,
        hidden_size=transformer.hidden_size,
        num_steps=config.num_sampling_steps,
        num_parameters=_parameter_count(model_dir),
        training_data=inputs.training_data or "Not given when this card was written.",
        training_command=_command_block(inputs.training_command),
        evaluation=evaluation_section(inputs.evaluation),
        extra_limitations=list(inputs.extra_limitations),
        licence=licence_text(inputs.converted),
        conversion=None if inputs.conversion is None else conversion_section(inputs.conversion),
        video=transformer.num_frames is not None,
        min_transformers=MIN_TRANSFORMERS,
        authors_repository=AUTHORS_REPOSITORY,
    )


def is_converted_folder(model_dir: str | Path) -> bool:
    """Whether `model_dir` holds weights converted by `c2f-hf convert-original` (its card says so)."""
    readme = Path(model_dir) / "README.md"
    return readme.is_file() and CONVERTED_MARKER in readme.read_text(encoding="utf-8")


def build_space_card(
    title: str,
    model_ids: Sequence[str],
    sdk_version: str,
    short_description: str | None = None,
    preload_from_hub: Sequence[str] = (),
) -> SpaceCard:
    """The Space README: Gradio SDK `sdk_version`, `app.py`, the models it uses (`model_ids`, the first being the
    amodal model; a SAM id among the others is the image tab's prompt model, a SAM 2 id the video tab's tracker),
    the Hub repos the Space downloads at build time (`preload_from_hub`), the one-line `short_description` of the
    Space listing, and how to deploy it."""
    card_data = SpaceCardData(
        title=title,
        short_description=short_description,
        sdk="gradio",
        sdk_version=sdk_version,
        app_file="app.py",
        license=CODE_LICENCE,
        models=list(model_ids),
        preload_from_hub=list(preload_from_hub) or None,
        tags=list(CARD_TAGS[:2]),
        emoji="🧩",
        colorFrom="indigo",
        colorTo="green",
        pinned=False,
    )
    template = files(__package__).joinpath("templates").joinpath("space_card.md").read_text(encoding="utf-8")
    prompt_models = [model_id for model_id in model_ids[1:] if "sam" in model_id.lower()]
    sam_model_id = next((model_id for model_id in prompt_models if "sam2" not in model_id.lower()), None)
    sam2_model_id = next((model_id for model_id in prompt_models if "sam2" in model_id.lower()), None)
    return SpaceCard.from_template(
        card_data,
        template_str=template,
        title=title,
        model_id=model_ids[0],
        sam_model_id=sam_model_id,
        sam2_model_id=sam2_model_id,
    )


__all__ = [
    "ConversionRecord",
    "EvaluationSource",
    "ModelCardInputs",
    "build_model_card",
    "build_space_card",
    "conversion_section",
    "eval_results",
    "evaluation_section",
    "is_converted_folder",
    "licence_text",
    "load_metrics",
    "model_card_data",
    "results_table",
]
