"""Crash-safe training checkpoints that are read back without unpickling anything.

A checkpoint is the folder `output_dir/checkpoints/checkpoint_<step>`:

- `model.safetensors`: the whole model's state (main process);
- `optimizer.pt`, `scheduler.pt`: their `state_dict()`s (tensors and plain containers, main process);
- `rng_rank<r>.pt`: per process, the torch (CPU and CUDA), numpy and Python RNG states and the run's generator, as
  tensors and plain values;
- `training_state.json`: step, epoch and batches consumed in the epoch, and the number of processes.

Every `.pt` file is read with `torch.load(weights_only=True)`, `model.safetensors` with safetensors and the JSON
with `json`: a file that holds pickled code is refused with a ValueError naming it, and nothing in it runs.

Writes are atomic: every process writes into `checkpoints/.tmp-checkpoint_<step>`, and once all have finished the
main process renames it to `checkpoint_<step>`. A run killed while writing leaves only a `.tmp-` folder, which
resuming ignores and removes; rotation keeps the newest `keep` complete checkpoints and never counts a `.tmp-`
folder. Only folders named exactly `checkpoint_<step>` are checkpoints: a stray `checkpoint_10.bak` is reported
on resume and otherwise left alone. The training state read back is size-capped and checked against the run.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..weights_only import refused_global
from .validation import integer_in, non_negative_integer, positive_integer

CHECKPOINTS_FOLDER = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint_"
TEMPORARY_PREFIX = ".tmp-"
STATE_FILE = "training_state.json"
# The state file holds a few counters (about 100 bytes); anything far larger is not one and is not read whole.
STATE_FILE_MAX_BYTES = 65536
CHECKPOINT_NAME = re.compile(rf"{CHECKPOINT_PREFIX}(0|[1-9][0-9]*)")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS_FOLDER


def checkpoint_step(folder: Path) -> int | None:
    """The step of a folder named exactly `checkpoint_<step>` (ASCII digits, no leading zero), else None."""
    match = CHECKPOINT_NAME.fullmatch(folder.name)
    return int(match[1]) if match and folder.is_dir() else None


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete `checkpoint_<step>` folders of a run, oldest first. Anything else in the folder (a
    `checkpoint_10.bak` copy, a file) is no checkpoint: never read, never rotated away."""
    folders = [
        path for path in checkpoint_root(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(path) is not None
    ]
    return sorted(folders, key=checkpoint_step)


def stray_entries(output_dir: str | Path) -> list[Path]:
    """What the checkpoints folder holds besides complete checkpoints and `.tmp-` folders (left alone)."""
    root = checkpoint_root(output_dir)
    entries = root.iterdir() if root.is_dir() else []
    return sorted(
        path for path in entries if checkpoint_step(path) is None and not path.name.startswith(TEMPORARY_PREFIX)
    )


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    folders = complete_checkpoints(output_dir)
    return folders[-1] if folders else None


def remove_incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Delete the `.tmp-` folders a killed run left behind; returns them."""
    leftovers = sorted(checkpoint_root(output_dir).glob(f"{TEMPORARY_PREFIX}*"))
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers


def _rng_state(generator: torch.Generator) -> dict:
    """This process's RNG states as tensors and plain values (loadable with `weights_only=True`)."""
    numpy_name, numpy_keys, numpy_position, has_gauss, cached_gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": numpy_name,
            "keys": torch.from_numpy(numpy_keys.astype(np.int64)),
            "position": int(numpy_position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": {"version": version, "state": list(python_state), "gauss": python_gauss},
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["name"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gauss"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def preserved_rng_states(generator: torch.Generator) -> Iterator[None]:
    """Every RNG state a checkpoint holds (torch, CUDA, numpy, Python and `generator`) is the same after the block
    as before it: what runs inside (evaluation, samples) neither changes training nor what a checkpoint written
    before it resumes to."""
    state = _rng_state(generator)
    try:
        yield
    finally:
        _restore_rng_state(state, generator)


def save_checkpoint(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    training_state: dict,
    generator: torch.Generator,
    output_dir: str | Path,
    keep: int,
) -> Path:
    """Write `checkpoint_<step>` atomically (see the module docstring) and rotate to the newest `keep`.

    `training_state` holds `step`, `epoch` and `batches_in_epoch`. Every process must call this.
    """
    step = training_state["step"]
    final = checkpoint_root(output_dir) / f"{CHECKPOINT_PREFIX}{step}"
    temporary = checkpoint_root(output_dir) / f"{TEMPORARY_PREFIX}{CHECKPOINT_PREFIX}{step}"
    model_state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(generator), temporary / f"rng_rank{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        save_file({name: tensor.contiguous() for name, tensor in model_state.items()}, temporary / "model.safetensors")
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        state = {**training_state, "num_processes": accelerator.num_processes}
        (temporary / STATE_FILE).write_text(json.dumps(state, indent=2))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        for old in complete_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _load_tensors(path: Path):
    """`torch.load(path, weights_only=True)`; a file holding pickled code (or not a torch file) is a ValueError."""
    if not path.is_file():
        raise ValueError(f"{path}: missing from the checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        found = refused_global(error)
        reason = f"it holds pickled code ({found}), which is never run" if found else "unreadable"
        raise ValueError(f"{path}: refused ({reason}); checkpoints hold tensors and plain values only") from None


def _read_capped(path: Path, limit: int) -> str:
    """The UTF-8 text of `path`; a ValueError naming it when it is unreadable or over `limit` bytes."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{path}: larger than {limit} bytes, not a training state")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable training state ({type(error).__name__})") from None


def read_training_state(folder: Path, max_steps: int) -> dict:
    """The checkpoint's `training_state.json`, checked against the run: `step` a whole number in
    `[0, max_steps]` equal to the folder's step, `epoch` and `batches_in_epoch` non-negative integers,
    `num_processes` (when present) positive. Raises ValueError naming the file and the field."""
    path = folder / STATE_FILE
    try:
        state = json.loads(_read_capped(path, STATE_FILE_MAX_BYTES))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a readable training state ({type(error).__name__})") from None
    if not isinstance(state, dict) or not {"step", "epoch", "batches_in_epoch"} <= set(state):
        raise ValueError(f"{path}: expected step, epoch and batches_in_epoch")
    checks = {
        "step": integer_in(0, max_steps, bounds=f"an integer in [0, max_steps={max_steps}]"),
        "epoch": non_negative_integer,
        "batches_in_epoch": non_negative_integer,
        "num_processes": positive_integer,
    }
    try:
        state = {name: checks[name](name, value) if name in checks else value for name, value in state.items()}
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if state["step"] != checkpoint_step(folder):
        raise ValueError(f"{path}: step: {state['step']} is not the step of its folder {folder.name}")
    return state


def load_checkpoint(
    folder: Path,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    generator: torch.Generator,
    max_steps: int,
) -> dict:
    """Restore a checkpoint written by `save_checkpoint` into a run of `max_steps`; returns its training state.
    Raises ValueError naming the file for anything that is not tensors and plain values, a training state out of
    the run's bounds (`read_training_state`), or a process-count change."""
    state = read_training_state(folder, max_steps)
    if state.get("num_processes", accelerator.num_processes) != accelerator.num_processes:
        raise ValueError(
            f"{folder}: written by {state['num_processes']} processes, resumed with {accelerator.num_processes}; "
            "resume with the same number of processes"
        )
    try:
        model_state = load_file(folder / "model.safetensors")
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{folder / 'model.safetensors'}: not a readable safetensors file ({error})") from None
    accelerator.unwrap_model(model).load_state_dict(model_state)
    optimizer.load_state_dict(_load_tensors(folder / "optimizer.pt"))
    scheduler.load_state_dict(_load_tensors(folder / "scheduler.pt"))
    _restore_rng_state(_load_tensors(folder / f"rng_rank{accelerator.process_index}.pt"), generator)
    return state


__all__ = [
    "complete_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "preserved_rng_states",
    "read_training_state",
    "remove_incomplete_checkpoints",
    "save_checkpoint",
    "stray_entries",
]
