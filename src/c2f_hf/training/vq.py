"""Stage 1: the mask VQ-GAN on amodal mask crops.

Loss: L1 reconstruction of the [0, 1] mask plus the codebook/commitment loss. The authors also use a VGG
perceptual term, which needs pretrained VGG weights we cannot download; it is left out.
"""

import logging
from pathlib import Path

import torch

from ..evaluation import iou
from ..models.c2f_seg.modeling_c2f_seg import C2FSegVQModel
from .common import (
    LoopHooks,
    build_accelerator,
    learning_rate_schedule,
    object_loader,
    prepare_run,
    run_loop,
    save_final_model,
)
from .config import TrainingConfig

logger = logging.getLogger(__name__)


def reconstruction_loss(model: C2FSegVQModel, amodal_masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 between the decoded mask and `amodal_masks (batch, 1, S, S)`, plus the codebook loss."""
    output = model(amodal_masks)
    reconstruction = (output.reconstruction.mean(dim=1, keepdim=True) - amodal_masks).abs().mean()
    loss = reconstruction + output.codebook_loss
    return loss, {"loss": loss.item(), "l1": reconstruction.item(), "codebook": output.codebook_loss.item()}


@torch.no_grad()
def reconstruction_miou(model: C2FSegVQModel, loader: torch.utils.data.DataLoader, max_batches: int) -> float:
    """Mean IoU of encode -> decode_indices (threshold 0.5) against the input masks over a few batches."""
    was_training = model.training
    model.eval()
    scores = []
    for index, batch in enumerate(loader):
        if index >= max_batches:
            break
        masks = batch["amodal_masks"].to(model.device)
        decoded = model.decode_indices(model.encode(masks).indices) >= 0.5
        scores.extend(iou(pred[0].cpu(), target[0].cpu()) for pred, target in zip(decoded, masks))
    model.train(was_training)
    return sum(scores) / max(1, len(scores))


def train_vq(config: TrainingConfig, resume: bool = False) -> Path:
    """Train `C2FSegVQModel` of `config.preset`; returns the folder of the final `save_pretrained` model."""
    accelerator = build_accelerator(config)
    vq_config = config.architecture().vq_config
    model = C2FSegVQModel(vq_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=config.betas)
    scheduler = learning_rate_schedule(optimizer, config)
    loader = object_loader(config, vq_config.resolution)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    run = prepare_run(config, accelerator, model, optimizer, scheduler, resume)

    def loss(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return reconstruction_loss(model, batch["amodal_masks"])

    def evaluate(step: int) -> dict[str, float]:
        unwrapped = accelerator.unwrap_model(model)
        return {"train_reconstruction_miou": reconstruction_miou(unwrapped, loader, max_batches=4)}

    hooks = LoopHooks(loss=loss, evaluate=evaluate)
    run_loop(run, loader, hooks)
    final = save_final_model(accelerator, model, Path(config.output_dir))
    logger.info("stage-1 VQ model saved to %s", final)
    return final
