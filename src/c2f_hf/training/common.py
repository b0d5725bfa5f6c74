"""Pieces shared by the two training stages: the Accelerator, the object-crop data loader, resumable state,
the learning-rate schedule, the loop driver and the final save. Checkpoints are `training.checkpoints`'."""

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..data import schema
from ..data.transforms import AmodalObjectDataset, ObjectCropTransform, VisibleMaskAugmentation, collate_object_crops
from ..data.video_frames import frame_dataset
from ..data.video_transforms import ClipCropTransform, VideoObjectClipDataset
from .checkpoints import (
    latest_checkpoint,
    load_checkpoint,
    preserved_rng_states,
    remove_incomplete_checkpoints,
    save_checkpoint,
    stray_entries,
)
from .config import TrainingConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """What the loop needs to resume exactly: the optimiser step, the epoch, the batches of the current epoch
    already consumed, and the generator of the token masks and coarse-mask sampling."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)

    def counters(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch}


@dataclass
class TrainingRun:
    """The prepared parts of one run that a checkpoint saves and restores."""

    accelerator: Accelerator
    config: TrainingConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    state: TrainingState

    def save(self) -> None:
        save_checkpoint(
            self.accelerator,
            self.model,
            self.optimizer,
            self.scheduler,
            self.state.counters(),
            self.state.generator,
            self.config.output_dir,
            self.config.keep_checkpoints,
        )

    def resume(self) -> None:
        """Restore the newest complete checkpoint (after removing any a killed run left incomplete)."""
        if self.accelerator.is_main_process:
            for leftover in remove_incomplete_checkpoints(self.config.output_dir):
                logger.warning("removed %s, a checkpoint a killed run left incomplete", leftover)
            for stray in stray_entries(self.config.output_dir):
                logger.warning("ignored %s: not a checkpoint_<step> folder", stray)
        self.accelerator.wait_for_everyone()
        checkpoint = latest_checkpoint(self.config.output_dir)
        if checkpoint is None:
            logger.warning("--resume given but %s has no checkpoint yet: starting from step 0", self.config.output_dir)
            return
        counters = load_checkpoint(
            checkpoint,
            self.accelerator,
            self.model,
            self.optimizer,
            self.scheduler,
            self.state.generator,
            self.config.max_steps,
        )
        self.state.step, self.state.epoch = counters["step"], counters["epoch"]
        self.state.batches_in_epoch = counters["batches_in_epoch"]
        logger.info("resumed from %s at step %d", checkpoint, self.state.step)


def build_accelerator(config: TrainingConfig) -> Accelerator:
    """The run's Accelerator; also seeds every RNG, so the model built next is initialised reproducibly.

    Mixed precision and gradient accumulation come from `accelerate launch` / `accelerate config` (or their
    environment variables) unless the config sets them. Several processes on a machine without a GPU (e.g.
    `torchrun --nproc_per_node 2 -m c2f_hf.cli ...`) train as Accelerate's MULTI_CPU (gloo), which Accelerate
    only chooses when asked for the CPU."""
    set_seed(config.seed)
    options = {}
    if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        options["cpu"] = True
    if config.gradient_accumulation_steps is not None:
        options["gradient_accumulation_steps"] = config.gradient_accumulation_steps
    if config.report_to:
        options["log_with"] = config.report_to
        options["project_config"] = ProjectConfiguration(
            project_dir=config.output_dir, logging_dir=str(Path(config.output_dir) / "trackers")
        )
    return Accelerator(
        mixed_precision=config.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        **options,
    )


def object_loader(config: TrainingConfig, crop_size: int, num_frames: int | None = None) -> torch.utils.data.DataLoader:
    """Shuffled per-object training crops (the visible-mask augmentation and flip of `config`), seeded by
    `config.seed` and the epoch.

    With `num_frames` (a video model) the samples are per-object windows of that many frames
    (`VideoObjectClipDataset`, batches `(batch, T, C, S, S)`). Otherwise a video dataset is first written out frame
    by frame (`output_dir/frames`, `frame_dataset`), so the VQ stage and image models train on its frames.
    """
    rows = schema.load_amodal_dataset(config.dataset, config.split, revision=config.dataset_revision)
    settings = {
        "crop_size": crop_size,
        "training": True,
        "flip_probability": config.flip_probability,
        "augmentation": VisibleMaskAugmentation(**config.augmentation),
    }
    if num_frames is not None:
        if config.second_crop_probability > 0:
            raise ValueError("second_crop_probability: a video model crops each window once; leave it 0")
        transform = ClipCropTransform(**settings)
        dataset = VideoObjectClipDataset(rows, num_frames, seed=config.seed, transform=transform)
    else:
        if "frames" in rows.column_names:
            rows = frame_dataset(rows, Path(config.output_dir) / "frames")
        transform = ObjectCropTransform(**settings, second_crop_probability=config.second_crop_probability)
        dataset = AmodalObjectDataset(rows, seed=config.seed, transform=transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.num_workers,
        collate_fn=collate_object_crops,
        generator=torch.Generator().manual_seed(config.seed),
    )


def learning_rate_schedule(optimizer: torch.optim.Optimizer, config: TrainingConfig):
    """transformers' `get_scheduler(config.lr_scheduler_type)` with `config.warmup_steps` of warm-up over
    `config.max_steps` ("linear", the default, is the authors' linear warm-up then linear decay to 0)."""
    return get_scheduler(
        config.lr_scheduler_type,
        optimizer,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.max_steps,
    )


def batches(
    accelerator: Accelerator, loader: torch.utils.data.DataLoader, state: TrainingState
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches over epochs; resumes inside an epoch by skipping the batches already consumed."""
    while True:
        loader.set_epoch(state.epoch)
        loader.dataset.set_epoch(state.epoch)
        epoch_loader = accelerator.skip_first_batches(loader, state.batches_in_epoch)
        for batch in epoch_loader:
            state.batches_in_epoch += 1
            yield batch
        state.epoch += 1
        state.batches_in_epoch = 0


@dataclass
class LoopHooks:
    """Stage-specific parts of the loop: `loss(batch) -> (loss, logs)` and optional periodic callbacks."""

    loss: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
    evaluate: Callable[[int], dict[str, float]] | None = None
    write_samples: Callable[[int], None] | None = None


def run_loop(run: TrainingRun, loader: torch.utils.data.DataLoader, hooks: LoopHooks) -> None:
    """Optimise until `config.max_steps`, with gradient accumulation and clipping, logging, periodic
    evaluation, samples and checkpoints."""
    accelerator, config, model, state = run.accelerator, run.config, run.model, run.state
    optimizer, scheduler = run.optimizer, run.scheduler
    progress = tqdm(
        total=config.max_steps,
        initial=state.step,
        desc=f"train {config.stage}",
        disable=not accelerator.is_main_process,
    )
    started, samples_seen, first_batch = time.perf_counter(), 0, None
    for batch in [] if state.step >= config.max_steps else batches(accelerator, loader, state):
        if first_batch is None:
            first_batch = sample_ids(batch)
        with accelerator.accumulate(model):
            loss, logs = hooks.loss(batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        samples_seen += len(batch["pixel_values"]) * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        progress.update(1)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the loss became {loss.item()} at step {state.step}")
        if state.step % config.log_every == 0:
            logs["learning_rate"] = scheduler.get_last_lr()[0]
            logs["samples_per_second"] = samples_seen / (time.perf_counter() - started)
            progress.set_postfix({key: f"{value:.4g}" for key, value in logs.items()})
            log_metrics(accelerator, config, state.step, logs)
        periodic(run, hooks)
        if state.step >= config.max_steps:
            break
    progress.close()
    write_process_summary(run, first_batch or [], samples_seen // accelerator.num_processes)


def sample_ids(batch: dict[str, torch.Tensor]) -> list[list[int]]:
    """`[image_index, object_index]` of each sample of a batch (empty when the batch does not carry them)."""
    if "image_index" not in batch or "object_index" not in batch:
        return []
    return torch.stack([batch["image_index"], batch["object_index"]], dim=-1).reshape(-1, 2).tolist()


def parameters_digest(model: torch.nn.Module) -> str:
    """SHA-256 over a model's parameters (names, dtypes, shapes and values, in name order). Buffers are left out:
    BatchNorm running statistics are each process's own in data-parallel training (the main process's are saved)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_process_summary(run: TrainingRun, first_batch: list[list[int]], samples: int) -> None:
    """Each process writes `output_dir/processes/process_<index>.json`: its index, the number of processes, the
    `[image_index, object_index]` of the first batch it trained on this session, how many samples it saw, the
    final step and a digest of its model's parameters (equal on every process of a healthy data-parallel run)."""
    accelerator = run.accelerator
    folder = Path(run.config.output_dir) / "processes"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "process_index": accelerator.process_index,
        "num_processes": accelerator.num_processes,
        "first_batch": first_batch,
        "samples_seen": samples,
        "step": run.state.step,
        "parameters_sha256": parameters_digest(accelerator.unwrap_model(run.model)),
    }
    (folder / f"process_{accelerator.process_index}.json").write_text(json.dumps(summary, indent=2))


def periodic(run: TrainingRun, hooks: LoopHooks) -> None:
    """The checkpoint, evaluation and samples due at this step, the checkpoint first: an evaluation or sample that
    fails then never costs the step's weights. Evaluation and samples leave every RNG as they found it, so the
    checkpoint resumes to what the uninterrupted run trains next."""
    accelerator, config, state = run.accelerator, run.config, run.state
    if state.step % config.save_every == 0 or state.step == config.max_steps:
        run.save()
    evaluate = hooks.evaluate is not None and state.step % config.eval_every == 0
    write_samples = hooks.write_samples is not None and state.step % config.sample_every == 0
    if not accelerator.is_main_process or not (evaluate or write_samples):
        return
    with preserved_rng_states(state.generator):
        if evaluate:
            log_metrics(accelerator, config, state.step, hooks.evaluate(state.step))
        if write_samples:
            hooks.write_samples(state.step)


def log_metrics(accelerator: Accelerator, config: TrainingConfig, step: int, values: dict[str, float]) -> None:
    """Append one JSON line per log event to `output_dir/log.jsonl` (main process only) and send the values to the
    run's trackers (`config.report_to`)."""
    if not values:
        return
    if config.report_to:
        accelerator.log(values, step=step)
    if not accelerator.is_main_process:
        return
    logger.info("step %d: %s", step, values)
    with open(Path(config.output_dir) / "log.jsonl", "a") as log_file:
        log_file.write(json.dumps({"step": step, **values}) + "\n")


def prepare_run(
    config: TrainingConfig,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    resume: bool,
) -> TrainingRun:
    """Write the resolved settings and, when resuming, restore the latest complete checkpoint."""
    state = TrainingState(generator=torch.Generator(device=accelerator.device).manual_seed(config.seed))
    run = TrainingRun(accelerator, config, model, optimizer, scheduler, state)
    output = Path(config.output_dir)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        (output / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    accelerator.wait_for_everyone()
    if resume:
        run.resume()
    if config.report_to:
        accelerator.init_trackers(f"c2f_hf-{config.stage}", config=tracker_config(config))
    return run


def tracker_config(config: TrainingConfig) -> dict[str, int | float | str | bool]:
    """The run's settings as the flat scalars trackers take (lists and mappings as JSON text)."""
    return {
        key: value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
        for key, value in config.to_dict().items()
        if value is not None
    }


def log_images(accelerator: Accelerator, name: str, image: np.ndarray, step: int) -> None:
    """Send an `(H, W, 3)` uint8 image to every tracker of the run that takes images."""
    for tracker in accelerator.trackers:
        if hasattr(tracker, "log_images"):
            tracker.log_images({name: image[None]}, step=step, dataformats="NHWC")


def save_final_model(accelerator: Accelerator, model: torch.nn.Module, output_dir: Path, **extras) -> Path:
    """`save_pretrained` of the unwrapped model (plus e.g. an image processor) into `output_dir/final`."""
    final = Path(output_dir) / "final"
    accelerator.wait_for_everyone()
    accelerator.end_training()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(
        final, is_main_process=accelerator.is_main_process, state_dict=accelerator.get_state_dict(model)
    )
    if accelerator.is_main_process:
        for extra in extras.values():
            extra.save_pretrained(final)
    return final
