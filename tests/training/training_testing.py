"""Helpers of the training tests: the tiny runs' command-line flags, running the CLI as a process, killing it."""

import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from c2f_hf.training.checkpoints import latest_checkpoint

STEPS = 6


def common_flags(workspace, output, steps=STEPS):
    return [
        "--dataset",
        str(workspace / "data"),
        "--output-dir",
        str(output),
        "--model-config",
        str(workspace / "architecture"),
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--save-every",
        "2",
        "--eval-every",
        "3",
        "--set",
        "log_every=1",
        "--set",
        "eval_max_objects=4",
        "--set",
        "sample_every=3",
        "--preset",
        "tiny",
    ]


def run_cli(arguments, cwd):
    environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "c2f_hf.cli", *arguments],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_after_checkpoint(process: subprocess.Popen, output, step: int, timeout: float = 240) -> None:
    """SIGKILL the run once the checkpoint of `step` (or a later one) is complete."""
    deadline = time.monotonic() + timeout
    while latest_checkpoint(output) is None or int(latest_checkpoint(output).name.split("_")[-1]) < step:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_same_weights(first_folder, second_folder):
    first, second = load_file(first_folder / "model.safetensors"), load_file(second_folder / "model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
