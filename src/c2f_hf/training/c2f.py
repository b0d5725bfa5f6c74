"""Stage 2: backbone, transformer and refiner on top of a frozen stage-1 VQ model.

Objective (the authors'): label-smoothed token cross-entropy on randomly masked amodal codes plus BCE of the
refined visible and amodal masks; AdamW with no weight decay on the transformer's biases and LayerNorms and a
linear warm-up / linear decay schedule.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from transformers import ResNetBackbone

from ..data import schema
from ..data.transforms import AmodalObjectDataset, collate_object_crops
from ..data.video_transforms import VideoObjectClipDataset
from ..evaluation import evaluate_model
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.mask_policy import crops_with_pixels
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation, C2FSegVQModel
from .common import (
    LoopHooks,
    build_accelerator,
    learning_rate_schedule,
    log_images,
    object_loader,
    prepare_run,
    run_loop,
    save_final_model,
)
from .config import TrainingConfig

logger = logging.getLogger(__name__)

# The authors' no-decay names ("bias", "ln1.weight", "ln2.weight") in our names: the video layers' MLP LayerNorm
# (their `ln3`) is decayed, as in their code.
NO_DECAY_NAMES = (
    "bias",
    "layernorm_before.weight",
    "layernorm_after.weight",
    "spatial_layernorm.weight",
    "temporal_layernorm.weight",
)
NUM_SAMPLE_OBJECTS = 8


def build_model(config: TrainingConfig) -> C2FSegForAmodalSegmentation:
    """The model to train, its VQ model frozen: `config.init_model` loaded whole, or the configured architecture
    with the trained VQ model of `config.vq_model` (and the ImageNet backbone of `config.init_backbone`);
    `config.model_overrides` applied to its config either way."""
    if config.init_model:
        model_config = dataclasses.replace(C2FSegConfig.from_pretrained(config.init_model), **config.model_overrides)
        model = C2FSegForAmodalSegmentation.from_pretrained(config.init_model, config=model_config, dtype=torch.float32)
        model.vq_model.requires_grad_(False)
        return model
    model = C2FSegForAmodalSegmentation(dataclasses.replace(config.architecture(), **config.model_overrides))
    if config.init_backbone:
        load_pretrained_backbone(model, config.init_backbone)
    vq_model = C2FSegVQModel.from_pretrained(config.vq_model)
    expected = model.config.vq_config
    differing = [
        name for name in type(expected).__annotations__ if getattr(expected, name) != getattr(vq_model.config, name)
    ]
    if differing:
        raise ValueError(f"{config.vq_model}: its VQ config differs from the model's in {differing}")
    model.vq_model.load_state_dict(vq_model.state_dict())
    model.vq_model.requires_grad_(False)
    return model


BACKBONE_ARCHITECTURE_FIELDS = ("embedding_size", "hidden_sizes", "depths", "layer_type", "downsample_in_bottleneck")


def _architecture_value(config, name: str):
    """A ResNet config field, lists and tuples compared alike."""
    value = getattr(config, name)
    return list(value) if isinstance(value, (list, tuple)) else value


def load_pretrained_backbone(model: C2FSegForAmodalSegmentation, source: str) -> None:
    """Copy the weights of a transformers ResNet (Hub id or folder, e.g. `microsoft/resnet-50`, ImageNet; from the
    local HF cache when offline) into `model.backbone`. The last stage's stride is the model's own (1): strides
    hold no weights. Raises ValueError when the architectures differ."""
    pretrained = ResNetBackbone.from_pretrained(source)
    ours, theirs = model.backbone.config, pretrained.config
    differing = [
        name
        for name in BACKBONE_ARCHITECTURE_FIELDS
        if _architecture_value(ours, name) != _architecture_value(theirs, name)
    ]
    if differing:
        found = [_architecture_value(theirs, name) for name in differing]
        wanted = [_architecture_value(ours, name) for name in differing]
        raise ValueError(
            f"init_backbone: {source} is a ResNet with other {differing} than the model's backbone "
            f"({found} vs {wanted})"
        )
    model.backbone.load_state_dict(pretrained.state_dict())
    logger.info("backbone initialised from %s", source)


def parameter_groups(model: C2FSegForAmodalSegmentation, weight_decay: float) -> list[dict]:
    """The authors' AdamW groups: the transformer without decay on biases and LayerNorms, the backbone and the
    refiner with decay. The frozen VQ model is left out."""
    decayed, not_decayed = [], []
    for name, parameter in model.transformer.named_parameters():
        (not_decayed if any(part in name for part in NO_DECAY_NAMES) else decayed).append(parameter)
    others = list(model.backbone.parameters()) + list(model.refiner.parameters())
    return [
        {"params": decayed + others, "weight_decay": weight_decay},
        {"params": not_decayed, "weight_decay": 0.0},
    ]


def occluded_cell_weights(
    amodal_masks: torch.Tensor, visible_masks: torch.Tensor, grid_size: int, weight: float
) -> torch.Tensor:
    """Per-cell token-loss weights `(N, grid_size**2)`: `weight` where a cell of the token grid holds occluded
    pixels (amodal and not visible), 1 elsewhere. Masks `(N, 1, S, S)` in {0, 1}."""
    occluded = ((amodal_masks > 0.5) & (visible_masks <= 0.5)).float()
    cells = F.adaptive_max_pool2d(occluded, grid_size).flatten(1)
    return 1.0 + (weight - 1.0) * cells


def fully_hidden_frames(amodal_masks: torch.Tensor, visible_masks: torch.Tensor) -> torch.Tensor:
    """`(N,)` bool: True where the object is there (a non-empty amodal mask) but nothing of it is visible. Masks
    `(N, 1, S, S)` in {0, 1}."""
    return crops_with_pixels(amodal_masks) & ~crops_with_pixels(visible_masks)


def token_loss_weights(
    amodal_masks: torch.Tensor,
    visible_masks: torch.Tensor,
    grid_size: int,
    occluded_weight: float,
    hidden_frame_weight: float,
) -> torch.Tensor:
    """Per-cell token-loss weights `(N, grid_size**2)`: `occluded_cell_weights`, and every cell of a crop where the
    object is fully hidden (`fully_hidden_frames`) multiplied by `hidden_frame_weight`. Masks `(N, 1, S, S)`."""
    weights = occluded_cell_weights(amodal_masks, visible_masks, grid_size, occluded_weight)
    hidden = fully_hidden_frames(amodal_masks, visible_masks)
    return weights * torch.where(hidden, hidden_frame_weight, 1.0).unsqueeze(1)


def weighted_token_loss(
    logits: torch.Tensor, tokens: torch.Tensor, weights: torch.Tensor, label_smoothing: float
) -> torch.Tensor:
    """Weighted mean over cells of the label-smoothed token cross-entropy: `logits` `(N, L, V)`, `tokens` and
    `weights` `(N, L)`."""
    per_cell = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        tokens.reshape(-1),
        label_smoothing=label_smoothing,
        reduction="none",
    ).view_as(weights)
    return (per_cell * weights).sum() / weights.sum()


def reweighted_token_loss(
    model: C2FSegForAmodalSegmentation,
    batch: dict[str, torch.Tensor],
    logits: torch.Tensor,
    occluded_weight: float,
    hidden_frame_weight: float,
) -> torch.Tensor:
    """The token loss of `weighted_token_loss` with `token_loss_weights` for a training batch (image crops
    `(N, 1, S, S)` or video windows `(N, T, 1, S, S)`, frames flattened) and its logits `(..., L, V)`."""
    amodal = batch["amodal_masks"].flatten(0, batch["amodal_masks"].ndim - 4)
    visible = batch["visible_mask_targets"].flatten(0, batch["visible_mask_targets"].ndim - 4)
    with torch.no_grad():
        tokens = model.encode_masks(amodal)
    grid_size = int(round(tokens.shape[1] ** 0.5))
    weights = token_loss_weights(amodal, visible, grid_size, occluded_weight, hidden_frame_weight)
    logits = logits.reshape(-1, tokens.shape[1], logits.shape[-1])
    return weighted_token_loss(logits, tokens, weights, model.config.label_smoothing)


def sample_grid(model: C2FSegForAmodalSegmentation, batch: dict[str, torch.Tensor], seed: int) -> PIL.Image.Image:
    """One row per object: image crop | visible input | coarse mask | refined amodal | ground-truth amodal."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    output = model.generate(
        batch["pixel_values"].to(model.device), batch["visible_masks"].to(model.device), generator=generator
    )
    # Video batches `(clips, T, C, S, S)` show one row per frame.
    frames = lambda crops: crops.flatten(0, crops.ndim - 4).float().cpu()  # noqa: E731
    to_rgb = lambda mask: frames(mask).expand(-1, 3, -1, -1)  # noqa: E731
    columns = [
        frames(batch["pixel_values"]),
        to_rgb(batch["visible_masks"]),
        to_rgb(output.coarse_amodal_masks),
        to_rgb(output.amodal_masks),
        to_rgb(batch["amodal_masks"]),
    ]
    rows = torch.cat([torch.cat(list(column), dim=2) for column in zip(*columns)], dim=1)
    return PIL.Image.fromarray((rows.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8))


def train_c2f(config: TrainingConfig, resume: bool = False) -> Path:
    """Train the composite model of `config.preset`; returns the folder of the final `save_pretrained` model."""
    accelerator = build_accelerator(config)
    model = build_model(config)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    image_size = model.config.image_size
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.learning_rate, betas=config.betas
    )
    scheduler = learning_rate_schedule(optimizer, config)
    num_frames = model.config.transformer_config.num_frames
    loader = object_loader(config, image_size, num_frames)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    run = prepare_run(config, accelerator, model, optimizer, scheduler, resume)
    evaluation_set = schema.load_amodal_dataset(config.dataset, config.eval_split, revision=config.dataset_revision)
    sample_batch = fixed_sample_batch(config, image_size, num_frames)

    def loss(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        output = model(
            batch["pixel_values"],
            batch["visible_masks"],
            amodal_masks=batch["amodal_masks"],
            visible_mask_targets=batch["visible_mask_targets"],
            generator=run.state.generator,
        )
        token_loss = output.token_loss
        if config.occluded_token_weight != 1.0 or config.hidden_frame_token_weight != 1.0:
            unwrapped = accelerator.unwrap_model(model)
            token_loss = reweighted_token_loss(
                unwrapped,
                batch,
                output.token_logits,
                config.occluded_token_weight,
                config.hidden_frame_token_weight,
            )
        total = token_loss + output.refine_loss
        logs = {"loss": total.item(), "token": token_loss.item(), "refine": output.refine_loss.item()}
        return total, logs

    def evaluate(step: int) -> dict[str, float]:
        unwrapped = accelerator.unwrap_model(model).eval()
        results = evaluate_model(
            unwrapped, evaluation_set, max_objects=config.eval_max_objects, seed=config.seed, progress=False
        )
        unwrapped.train()
        return {
            f"{name}/{metric}": getattr(numbers, metric)
            for name, numbers in results.variants.items()
            for metric in ("miou_full", "miou_occ")
        }

    def write_samples(step: int) -> None:
        unwrapped = accelerator.unwrap_model(model).eval()
        folder = Path(config.output_dir) / "samples"
        folder.mkdir(exist_ok=True)
        grid = sample_grid(unwrapped, sample_batch, config.seed)
        grid.save(folder / f"step_{step:07d}.png")
        log_images(accelerator, "samples", np.asarray(grid), step)
        unwrapped.train()

    hooks = LoopHooks(loss=loss, evaluate=evaluate, write_samples=write_samples)
    run_loop(run, loader, hooks)
    processor = C2FSegImageProcessor(crop_resolution=image_size)
    final = save_final_model(accelerator, model, Path(config.output_dir), image_processor=processor)
    logger.info("stage-2 model saved to %s", final)
    return final


def fixed_sample_batch(
    config: TrainingConfig, image_size: int, num_frames: int | None = None
) -> dict[str, torch.Tensor]:
    """The first objects of the evaluation split, cropped without augmentation, for the sample images; for a video
    model the first object windows, about `NUM_SAMPLE_OBJECTS` frames in all."""
    rows = schema.load_amodal_dataset(config.dataset, config.eval_split, revision=config.dataset_revision)
    if num_frames is None:
        dataset = AmodalObjectDataset(rows, crop_size=image_size, training=False)
        count = min(NUM_SAMPLE_OBJECTS, len(dataset))
    else:
        dataset = VideoObjectClipDataset(rows, num_frames, crop_size=image_size, training=False)
        count = min(max(1, NUM_SAMPLE_OBJECTS // num_frames), len(dataset))
    return collate_object_crops([dataset[index] for index in range(count)])
