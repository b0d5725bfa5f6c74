"""Two training processes (torchrun, gloo on the CPU): sharding, identical parameters, resume."""

import json
import os
import signal
import subprocess
import sys
import time

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegVQModel
from c2f_hf.training.checkpoints import latest_checkpoint
from c2f_hf.training.common import parameters_digest
from training_testing import assert_same_weights


def two_process_command(arguments) -> list[str]:
    """`torchrun --standalone --nproc_per_node 2 -m c2f_hf.cli ...` (on the CPU: Accelerate's MULTI_CPU, gloo)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "c2f_hf.cli",
    ] + [*arguments]


def run_two_processes(arguments, cwd, wait: bool = True):
    environment = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        two_process_command(arguments),
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if wait:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-4000:]
    return process


def process_summaries(output) -> list[dict]:
    return [json.loads((output / "processes" / f"process_{index}.json").read_text()) for index in range(2)]


def two_process_flags(workspace, output, steps):
    data = ["--dataset", str(workspace / "data"), "--output-dir", str(output), "--batch-size", "2"]
    return [*data, "--max-steps", str(steps), "--save-every", "2", "--preset", "micro", "--set", "log_every=1"]


def test_two_processes_train_both_stages_shard_the_data_and_resume(workspace, tmp_path):
    straight, killed = tmp_path / "vq_straight", tmp_path / "vq_killed"
    run_two_processes(["train-vq", *two_process_flags(workspace, straight, 6)], workspace)
    process = run_two_processes(["train-vq", *two_process_flags(workspace, killed, 6)], workspace, wait=False)
    deadline = time.monotonic() + 300
    while latest_checkpoint(killed) is None or latest_checkpoint(killed).name != "checkpoint_4":
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint_4 appeared in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    run_two_processes(["train-vq", *two_process_flags(workspace, killed, 6), "--resume"], workspace)

    first, second = process_summaries(straight)
    assert (first["num_processes"], second["num_processes"]) == (2, 2)
    first_ids, second_ids = ({tuple(ids) for ids in summary["first_batch"]} for summary in (first, second))
    assert first_ids and second_ids and not first_ids & second_ids, "both processes trained on the same samples"
    assert first["parameters_sha256"] == second["parameters_sha256"]
    checkpoints = sorted(path.name for path in (straight / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_2", "checkpoint_4", "checkpoint_6"]
    assert {"rng_rank0.pt", "rng_rank1.pt"} <= {
        path.name for path in (straight / "checkpoints" / "checkpoint_6").iterdir()
    }
    assert parameters_digest(C2FSegVQModel.from_pretrained(straight / "final")) == first["parameters_sha256"]
    assert process_summaries(killed)[0]["step"] == 6
    assert_same_weights(straight / "final", killed / "final")

    stage_two = tmp_path / "c2f"
    arguments = ["train", *two_process_flags(workspace, stage_two, 2), "--vq-model", str(straight / "final")]
    run_two_processes([*arguments, "--set", "eval_every=2"], workspace)
    first, second = process_summaries(stage_two)
    assert first["parameters_sha256"] == second["parameters_sha256"]
    assert (
        parameters_digest(C2FSegForAmodalSegmentation.from_pretrained(stage_two / "final"))
        == first["parameters_sha256"]
    )
