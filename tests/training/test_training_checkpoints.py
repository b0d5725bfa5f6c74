"""Crash-safe checkpoints (`c2f_hf.training.checkpoints`): complete-or-absent folders, resume reads no pickle."""

import pickle
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from c2f_hf.cli import main
from c2f_hf.training.checkpoints import latest_checkpoint
from training_testing import assert_same_weights, common_flags, run_cli


class RunsCode:
    """A pickle payload that creates `marker` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def copy_run_without_final(source, destination):
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("final"))
    return destination


@pytest.mark.parametrize(
    "planted", ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_rank0.pt", "training_state.json"]
)
def test_resume_refuses_a_planted_pickle_in_any_checkpoint_file_without_running_it(
    workspace, vq_run, tmp_path, capsys, planted
):
    run = copy_run_without_final(vq_run, tmp_path / "run")
    checkpoint = latest_checkpoint(run)
    marker = tmp_path / "code_ran"
    with open(checkpoint / planted, "wb") as stream:
        pickle.dump({"state": RunsCode(marker)}, stream)
    torch.save({"state": RunsCode(marker)}, tmp_path / "payload.pt")
    if planted.endswith(".pt"):
        shutil.copy(tmp_path / "payload.pt", checkpoint / planted)
    assert main(["train-vq", *common_flags(workspace, run), "--resume"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{checkpoint / planted}:" in error, error
    assert not marker.exists() and not (run / "final").exists()


def test_an_incomplete_checkpoint_left_by_a_kill_is_ignored_and_removed_on_resume(workspace, vq_run, tmp_path):
    run = copy_run_without_final(vq_run, tmp_path / "run")
    checkpoints = sorted(path.name for path in (run / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_2", "checkpoint_4", "checkpoint_6"]
    shutil.rmtree(run / "checkpoints" / "checkpoint_6")
    shutil.rmtree(run / "checkpoints" / "checkpoint_4")
    half_written = run / "checkpoints" / ".tmp-checkpoint_4"
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"\x00" * 10)
    resumed = run_cli(["train-vq", *common_flags(workspace, run), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert not half_written.exists()
    assert_same_weights(vq_run / "final", run / "final")


def test_killing_the_run_while_it_saves_still_resumes_to_the_same_weights(workspace, vq_run):
    output = workspace / "vq_killed_while_saving"
    flags = ["train-vq", *common_flags(workspace, output)]
    killed_mid_write = 0
    for step in (2, 4):
        process = run_cli([*flags, "--resume"], workspace)
        temporary = output / "checkpoints" / f".tmp-checkpoint_{step}"
        deadline = time.monotonic() + 240
        while not temporary.exists():
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the checkpoint was never written"
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_mid_write += temporary.exists()
    resumed = run_cli([*flags, "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert_same_weights(vq_run / "final", output / "final")
    assert not list((output / "checkpoints").glob(".tmp-*")), f"{killed_mid_write} kills hit a write"
