"""Training settings: one dataclass for both stages, named presets, and YAML/JSON files with CLI overrides.

Resolution order: the preset's values, then the file given with `--config`, then `--set key=value` overrides,
then the explicit command-line flags.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml
from accelerate.utils import PrecisionType
from transformers import SchedulerType

from .. import presets
from ..data.transforms import VisibleMaskAugmentation
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig
from .validation import (
    Check,
    flag,
    fraction,
    fraction_pair,
    integer_in,
    mapping_of,
    non_negative_integer,
    non_negative_number,
    one_of,
    optional,
    positive_integer,
    positive_number,
    probability,
    text,
    text_list,
)

STAGES = ("vq", "c2f")
# The C2FSegConfig fields that `model_overrides` may change, each with its check.
MODEL_OVERRIDE_CHECKS: dict[str, Check] = {
    "num_sampling_steps": positive_integer,
    "sampling_top_k": positive_integer,
    "training_top_k": positive_integer,
    "choice_temperature": non_negative_number,
    "min_mask_ratio": probability,
    "label_smoothing": fraction,
}
AUGMENTATION_CHECKS: dict[str, Check] = {
    "blur_probability": probability,
    "morphology_probability": probability,
    "dilation_probability": probability,
    "min_repeats": non_negative_integer,
    "max_repeats": non_negative_integer,
    "min_kernel": positive_integer,
    "max_kernel": positive_integer,
    "blur_after_morphology_probability": probability,
    "blur_size": positive_integer,
    "blur_sigma": positive_number,
    "threshold": probability,
    "reference_size": positive_integer,
}


@dataclasses.dataclass
class TrainingConfig:
    """Settings of one training run (stage 1 `vq` or stage 2 `c2f`).

    The model architecture is the preset's (`c2f_hf.presets`) unless `model_config` names a `C2FSegConfig`
    JSON file or a folder holding one. Stage 2 starts from the stage-1 model `vq_model` (other parts freshly
    initialised), or fine-tunes a whole `C2FSegForAmodalSegmentation` folder `init_model` (e.g. a converted
    checkpoint, or a previous run's `final/`), whose architecture is then used. `model_overrides` changes the
    stage-2 objective and decoding fields of that model's config (`MODEL_OVERRIDE_CHECKS`, e.g.
    `{min_mask_ratio: 1.0, num_sampling_steps: 1}`); the saved model keeps them.

    `dataset` is a local folder in our layout or the Hub layout, or a Hub dataset id read at `dataset_revision`
    (`c2f_hf.data.schema.load_amodal_dataset`).

    `init_backbone` starts the stage-2 ResNet from a transformers ResNet's weights (Hub id or folder; the paper
    presets use ImageNet's `microsoft/resnet-50`, as the authors start from torchvision's ImageNet ResNet-50;
    not used with `init_model`, which brings its own backbone).

    `augmentation` sets fields of the visible-mask augmentation (`data.transforms.VisibleMaskAugmentation`,
    e.g. `blur_probability`); the paper presets hold the authors' per-dataset values (`AUTHORS_AUGMENTATION`) and
    `flip_probability` 0, since the authors never flip (their configs say `flip: True`, but no code reads it).
    `second_crop_probability` (image models; default 0, the authors' crops) is the chance that a crop the object's
    amodal mask reaches past is replaced by the second crop inference would take (`ObjectCropTransform`), so the
    model also learns from the off-centre crops of the image processor's `second_crop_ratio`.

    `occluded_token_weight` multiplies the token cross-entropy of the grid cells that hold occluded pixels (amodal
    minus clean visible mask); the loss stays a weighted mean over cells. Without it, most
    cells (background, visible parts) are easy and the occluded ones, the point of the model, are a small share.
    `hidden_frame_token_weight` further multiplies every cell of a crop where the object is fully hidden (its
    amodal mask not empty, its clean visible mask empty): the frames of a video window the object spends behind
    an occluder, which the model must fill from the other frames. 1.0 for both is the authors' objective.

    Every field is checked and converted to its declared type when the config is made (`SETTING_CHECKS`, one
    check per kind of value in `validation`): counts such as `save_every`, `eval_every` and `keep_checkpoints` are
    positive integers, `max_grad_norm` and `learning_rate` positive finite numbers, `model_overrides` and
    `augmentation` values in their fields' ranges; a bad value is a ValueError naming the field.

    `gradient_checkpointing` recomputes the transformer layers' activations in the backward pass (stage 2): less
    memory for more compute.

    `report_to` names Accelerate trackers (`tensorboard`, `wandb`, `mlflow`, ..., or `all`) that receive the
    losses, learning rate, throughput, periodic metrics and sample images besides `log.jsonl`; their files go to
    `output_dir/trackers`. `mixed_precision` and `gradient_accumulation_steps` left at None come from
    `accelerate launch` / `accelerate config`.

    The optimiser defaults are the authors' stage-2 settings (AdamW lr 3e-4, betas (0.9, 0.95), weight decay
    0.01, 5000 warm-up steps then linear decay); stage 1 uses Adam with betas (0.5, 0.9) as the authors'. The
    schedule is transformers' `get_scheduler(lr_scheduler_type)` ("linear", "cosine", "constant_with_warmup", ...).
    """

    stage: str = "c2f"
    preset: str = "kins"
    model_config: str | None = None
    dataset: str = ""
    dataset_revision: str | None = None
    output_dir: str = "outputs/train"
    vq_model: str | None = None
    init_model: str | None = None
    init_backbone: str | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    split: str = "train"
    eval_split: str = "test"
    max_steps: int = 150_000
    batch_size: int = 64
    gradient_accumulation_steps: int | None = None
    learning_rate: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    warmup_steps: int = 5000
    lr_scheduler_type: str = "linear"
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0
    mixed_precision: str | None = None
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    save_every: int = 1000
    eval_every: int = 1000
    eval_max_objects: int = 200
    sample_every: int = 1000
    keep_checkpoints: int = 3
    report_to: list[str] = dataclasses.field(default_factory=list)
    augmentation: dict[str, float] = dataclasses.field(default_factory=dict)
    flip_probability: float = 0.5
    second_crop_probability: float = 0.0
    occluded_token_weight: float = 1.0
    hidden_frame_token_weight: float = 1.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, SETTING_CHECKS[field.name](field.name, getattr(self, field.name)))
        if self.stage == "c2f" and not (self.vq_model or self.init_model):
            raise ValueError(
                "stage 'c2f' needs vq_model (the folder of a trained C2FSegVQModel, train-vq output) or init_model "
                "(a C2FSegForAmodalSegmentation folder to fine-tune)"
            )
        if self.init_backbone and self.stage != "c2f":
            raise ValueError("init_backbone applies to stage 'c2f' only (stage 1 has no backbone)")
        if self.init_model and self.vq_model:
            raise ValueError("give vq_model or init_model, not both: init_model already holds its VQ model")
        if self.model_overrides and self.stage != "c2f":
            raise ValueError("model_overrides applies to stage 'c2f' only (they are C2FSegConfig fields)")
        _check_augmentation_ranges(VisibleMaskAugmentation(**self.augmentation))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def architecture(self) -> C2FSegConfig:
        """The `C2FSegConfig` to train: `model_config` when given, else the preset's."""
        if self.model_config is None:
            return presets.model_config(self.preset)
        path = Path(self.model_config)
        return C2FSegConfig.from_pretrained(path) if path.is_dir() else C2FSegConfig.from_json_file(path)


def _check_augmentation_ranges(augmentation: VisibleMaskAugmentation) -> None:
    """The augmentation's random ranges must not be empty (they are drawn in training, not before)."""
    for low, high in (("min_repeats", "max_repeats"), ("min_kernel", "max_kernel")):
        if getattr(augmentation, low) > getattr(augmentation, high):
            raise ValueError(
                f"augmentation.{low} ({getattr(augmentation, low)}) exceeds augmentation.{high} "
                f"({getattr(augmentation, high)})"
            )


# One check per `TrainingConfig` field (`validation`): every way in (preset, file, --set, flags, the dataclass
# itself) passes through `TrainingConfig.__post_init__`, which applies them.
SETTING_CHECKS: dict[str, Check] = {
    "stage": one_of(list(STAGES)),
    "preset": text,
    "model_config": optional(text),
    "dataset": text,
    "dataset_revision": optional(text),
    "output_dir": text,
    "vq_model": optional(text),
    "init_model": optional(text),
    "init_backbone": optional(text),
    "model_overrides": mapping_of(MODEL_OVERRIDE_CHECKS),
    "split": text,
    "eval_split": text,
    "max_steps": positive_integer,
    "batch_size": positive_integer,
    "gradient_accumulation_steps": optional(positive_integer),
    "learning_rate": positive_number,
    "betas": fraction_pair,
    "weight_decay": non_negative_number,
    "warmup_steps": non_negative_integer,
    "lr_scheduler_type": one_of([kind.value for kind in SchedulerType]),
    "gradient_checkpointing": flag,
    "max_grad_norm": positive_number,
    "mixed_precision": optional(one_of([kind.value for kind in PrecisionType])),
    "num_workers": non_negative_integer,
    "seed": integer_in(0, 2**32 - 1, bounds="a non-negative integer below 2**32"),
    "log_every": positive_integer,
    "save_every": positive_integer,
    "eval_every": positive_integer,
    "eval_max_objects": positive_integer,
    "sample_every": positive_integer,
    "keep_checkpoints": positive_integer,
    "report_to": text_list,
    "augmentation": mapping_of(AUGMENTATION_CHECKS),
    "flip_probability": probability,
    "second_crop_probability": probability,
    "occluded_token_weight": positive_number,
    "hidden_frame_token_weight": positive_number,
}

_STAGE_DEFAULTS = {
    "vq": {"learning_rate": 5e-5, "betas": (0.5, 0.9), "weight_decay": 0.0, "warmup_steps": 0, "batch_size": 4},
    "c2f": {},
}

# The authors' visible-mask augmentation per dataset (their `data/dataloader_*.py`): blur, morphology,
# dilation-vs-erosion and blur-after-morphology probabilities.
AUTHORS_AUGMENTATION = {
    dataset: dict(
        zip(
            ("blur_probability", "morphology_probability", "dilation_probability", "blur_after_morphology_probability"),
            values,
        )
    )
    for dataset, values in {
        "kins": (0.2, 0.4, 0.55, 0.1),
        "cocoa": (0.2, 0.7, 0.6, 0.2),
        "fishbowl": (0.1, 0.5, 0.5, 0.1),
        "movid_a": (0.1, 0.5, 0.5, 0.1),
    }.items()
}
IMAGENET_RESNET_50 = "microsoft/resnet-50"
_AUTHORS_DATA = {
    dataset: {"augmentation": augmentation, "flip_probability": 0.0}
    for dataset, augmentation in AUTHORS_AUGMENTATION.items()
}

TRAINING_PRESETS = {
    "micro": {
        "vq": {"max_steps": 10, "batch_size": 4, "learning_rate": 1e-3, "save_every": 5, "eval_every": 5},
        "c2f": {
            "max_steps": 10,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "warmup_steps": 2,
            "save_every": 5,
            "eval_every": 10,
            "sample_every": 5,
            "eval_max_objects": 8,
        },
    },
    "kins": {
        "vq": {"max_steps": 100_000, **_AUTHORS_DATA["kins"]},
        "c2f": {**_AUTHORS_DATA["kins"], "init_backbone": IMAGENET_RESNET_50, "max_steps": 150_000},
    },
    "cocoa": {
        "vq": {"max_steps": 100_000, **_AUTHORS_DATA["cocoa"]},
        "c2f": {**_AUTHORS_DATA["cocoa"], "init_backbone": IMAGENET_RESNET_50, "max_steps": 150_000},
    },
    "tiny": {
        "vq": {"max_steps": 1000, "batch_size": 16, "learning_rate": 1e-3, "save_every": 250, "eval_every": 250},
        "c2f": {
            "max_steps": 1500,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "warmup_steps": 100,
            "save_every": 250,
            "eval_every": 500,
            "sample_every": 250,
        },
    },
    "fishbowl": {
        "vq": {"max_steps": 100_000, **_AUTHORS_DATA["fishbowl"]},
        "c2f": {
            **_AUTHORS_DATA["fishbowl"],
            "init_backbone": IMAGENET_RESNET_50,
            "max_steps": 150_000,
            "batch_size": 1,
        },
    },
    "movid_a": {
        "vq": {"max_steps": 100_000, **_AUTHORS_DATA["movid_a"]},
        "c2f": {**_AUTHORS_DATA["movid_a"], "init_backbone": IMAGENET_RESNET_50, "max_steps": 150_000, "batch_size": 1},
    },
    "tiny_video": {
        "vq": {"max_steps": 1000, "batch_size": 16, "learning_rate": 1e-3, "save_every": 250, "eval_every": 250},
        "c2f": {
            "max_steps": 1500,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "warmup_steps": 100,
            "save_every": 250,
            "eval_every": 500,
            "sample_every": 250,
            "eval_max_objects": 100,
        },
    },
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of `TrainingConfig` fields."""
    path = Path(path)
    text = path.read_text()
    values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of training settings, got {type(values).__name__}")
    return values


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["key=value", ...]` -> dict, each value parsed as YAML (numbers, booleans, lists)."""
    values = {}
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator or not key:
            raise ValueError(f"override {override!r} is not of the form key=value")
        values[key.strip()] = yaml.safe_load(value)
    return values


def resolve_config(stage: str, preset: str, *layers: dict[str, Any]) -> TrainingConfig:
    """Merge the stage defaults, the preset and the given layers (later wins) into a `TrainingConfig`."""
    if preset not in TRAINING_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(TRAINING_PRESETS)}")
    values: dict[str, Any] = {"stage": stage, "preset": preset}
    values.update(_STAGE_DEFAULTS[stage])
    values.update(TRAINING_PRESETS[preset][stage])
    known = {field.name for field in dataclasses.fields(TrainingConfig)}
    for layer in layers:
        unknown = sorted(set(layer) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        values.update({key: value for key, value in layer.items() if value is not None})
    return TrainingConfig(**values)
