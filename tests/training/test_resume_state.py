"""What a run reads back from its output folder is checked against the run: exact `checkpoint_<step>` folder names,
training states of whole steps within `[0, max_steps]` and of bounded size; and a step that both saves and
evaluates saves first."""

import json
import random
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from c2f_hf.cli import main
from c2f_hf.training.checkpoints import complete_checkpoints, latest_checkpoint, read_training_state
from c2f_hf.training.common import (
    LoopHooks,
    TrainingRun,
    build_accelerator,
    learning_rate_schedule,
    prepare_run,
    run_loop,
)
from c2f_hf.training.config import resolve_config
from training_testing import common_flags


class Numbers(torch.utils.data.Dataset):
    """Eight two-number samples, with the `set_epoch` the training loop calls."""

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": torch.full((2,), float(index))}


def linear_run(output, resume=False, **settings) -> tuple[TrainingRun, torch.utils.data.DataLoader]:
    """A prepared run of a 2-to-1 linear model (2 steps, a checkpoint and an evaluation at step 2)."""
    values = {"dataset": "unused", "output_dir": str(output), "max_steps": 2, "save_every": 2, "eval_every": 2}
    config = resolve_config("vq", "micro", values, settings)
    accelerator = build_accelerator(config)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = learning_rate_schedule(optimizer, config)
    loader = torch.utils.data.DataLoader(Numbers(), batch_size=2)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    return prepare_run(config, accelerator, model, optimizer, scheduler, resume), loader


def squared_output(run: TrainingRun):
    def loss(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        value = run.model(batch["pixel_values"]).pow(2).mean()
        return value, {"loss": value.item()}

    return loss


def test_a_step_that_saves_and_evaluates_saves_first(tmp_path):
    run, loader = linear_run(tmp_path)

    def failing_evaluation(step: int) -> dict[str, float]:
        raise RuntimeError(f"evaluation failed at step {step}")

    with pytest.raises(RuntimeError, match="evaluation failed at step 2"):
        run_loop(run, loader, LoopHooks(loss=squared_output(run), evaluate=failing_evaluation))
    assert latest_checkpoint(tmp_path).name == "checkpoint_2"


def test_random_draws_in_an_evaluation_change_neither_training_nor_the_checkpoint_before_it(tmp_path):
    def noisy_loss(run: TrainingRun):
        def loss(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            value = (run.model(batch["pixel_values"]) + torch.rand(1, device=run.accelerator.device)).pow(2).mean()
            return value, {"loss": value.item()}

        return loss

    def drawing_evaluation(step: int) -> dict[str, float]:
        return {"draw": torch.rand(()).item() + float(np.random.rand()) + random.random()}

    weights = []
    for name, evaluate in (("plain", None), ("evaluated", drawing_evaluation)):
        run, loader = linear_run(tmp_path / name, max_steps=4, eval_every=1)
        run_loop(run, loader, LoopHooks(loss=noisy_loss(run), evaluate=evaluate))
        weights.append(load_file(latest_checkpoint(tmp_path / name) / "model.safetensors"))
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_only_exact_checkpoint_step_names_are_checkpoints(tmp_path):
    root = tmp_path / "checkpoints"
    names = ("checkpoint_2", "checkpoint_10", "checkpoint_0", "checkpoint_10.bak", "checkpoint_007", "checkpoint_x")
    for name in names:
        (root / name).mkdir(parents=True)
    (root / "checkpoint_\uff13").mkdir()
    (root / "checkpoint_5").write_text("a file")
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["checkpoint_0", "checkpoint_2", "checkpoint_10"]


def test_a_stray_folder_among_the_checkpoints_breaks_neither_a_save_nor_a_resume(tmp_path, caplog):
    stray = tmp_path / "checkpoints" / "checkpoint_10.bak"
    stray.mkdir(parents=True)
    run, loader = linear_run(tmp_path, keep_checkpoints=1)
    run_loop(run, loader, LoopHooks(loss=squared_output(run)))
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["checkpoint_2"] and stray.is_dir()
    resumed, _ = linear_run(tmp_path, resume=True, max_steps=4)
    assert resumed.state.step == 2
    assert f"ignored {stray}: not a checkpoint_<step> folder" in caplog.text


def write_state(folder, state) -> None:
    folder.mkdir()
    (folder / "training_state.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"step": 50}, r"step: expected an integer in \[0, max_steps=10\], got 50"),
        ({"step": 2.5}, r"step: expected an integer in \[0, max_steps=10\], got 2.5"),
        ({"step": -1}, r"step: expected an integer in \[0, max_steps=10\], got -1"),
        ({"step": True}, r"step: expected an integer in \[0, max_steps=10\], got True"),
        ({"step": "4"}, r"step: expected an integer in \[0, max_steps=10\], got '4'"),
        ({"step": 6}, "step: 6 is not the step of its folder checkpoint_4"),
        ({"epoch": -1}, "epoch: expected a non-negative integer, got -1"),
        ({"batches_in_epoch": 1.5}, "batches_in_epoch: expected a non-negative integer, got 1.5"),
        ({"num_processes": 0}, "num_processes: expected a positive integer, got 0"),
    ],
)
def test_a_hand_edited_training_state_is_refused_naming_the_field(tmp_path, changes, message):
    folder = tmp_path / "checkpoint_4"
    write_state(folder, {"step": 4, "epoch": 1, "batches_in_epoch": 0, "num_processes": 1, **changes})
    with pytest.raises(ValueError, match=f"^{folder / 'training_state.json'}: {message}$"):
        read_training_state(folder, max_steps=10)


def test_an_oversized_training_state_is_refused_without_reading_it_whole(tmp_path):
    folder = tmp_path / "checkpoint_4"
    write_state(folder, {"step": 4, "epoch": 1, "batches_in_epoch": 0, "padding": "x" * 200_000})
    with pytest.raises(ValueError, match="training_state.json: larger than 65536 bytes"):
        read_training_state(folder, max_steps=10)


def test_resuming_a_checkpoint_beyond_max_steps_is_refused_in_one_line(workspace, vq_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(vq_run, run, ignore=shutil.ignore_patterns("final"))
    flags = [*common_flags(workspace, run), "--max-steps", "3", "--resume"]
    assert main(["train-vq", *flags]) == 1
    state_file = run / "checkpoints" / "checkpoint_6" / "training_state.json"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"c2f-hf train-vq: {state_file}: step: expected an integer in [0, max_steps=3], got 6"
    )
    assert not (run / "final").exists()
