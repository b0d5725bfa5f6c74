"""`c2f-hf evaluate` and `c2f-hf predict` on two processes (torchrun, gloo on the CPU): the shares, the merged
metrics and predictions equal a one-process run's, and a killed `predict` resumes to the same output."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet
import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.cli import main
from c2f_hf.evaluation import AmodalMetrics, evaluate_model
from c2f_hf.evaluation.distributed import Processes
from c2f_hf.evaluation.runner import InferenceOptions, _checked_processor, _Run
from c2f_testing import tiny_video_config
from evaluation_testing import box_mask


def run_two_processes(arguments, cwd) -> str:
    """`torchrun --standalone --nproc_per_node 2 -m c2f_hf.cli ...`; returns its output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, "-m", "c2f_hf.cli", *arguments],
        cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout + result.stderr


def main_on_one_thread(arguments) -> int:
    """`c2f-hf ...` in this process on one thread, as each torchrun process runs: a convolution's sums can be
    ordered by the thread count (seen on the bf16 path of a Zen 4 EPYC: a predicted score 0.758 on two threads,
    0.741 on one, the same mask)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(arguments)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("num_items", [0, 1, 5, 6])
def test_the_shares_of_the_processes_cover_every_item_once_in_order(num_items):
    for count in (1, 2, 3):
        shares = [Processes(index, count).shard(range(num_items)) for index in range(count)]
        assert [item for share in shares for item in share] == list(range(num_items))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_merged_shares_give_the_numbers_of_one_accumulator():
    masks = [box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4), box_mask(1, 1, 5, 6), box_mask(0, 2, 3, 9)]
    whole, first, second = AmodalMetrics(), AmodalMetrics(), AmodalMetrics()
    for index, (prediction, visible) in enumerate(zip(masks, masks[1:] + masks[:1])):
        for metrics in (whole, first if index < 2 else second):
            metrics.add({"model": prediction}, masks[0], visible, image_id=index // 2, score=0.2 * index + 0.1)
    first.merge(second)
    assert first.compute() == whole.compute()
    with pytest.raises(ValueError, match="occlusion_range"):
        first.merge(AmodalMetrics(occlusion_range=(0.1, 0.7)))


def test_the_shares_of_a_video_model_run_merge_into_the_numbers_of_one(clip_dataset):
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_video_config(num_frames=3)).eval()
    expected_predictions = []
    whole = evaluate_model(model, clip_dataset, max_objects=6, progress=False, predictions=expected_predictions)
    metrics, predictions = AmodalMetrics(), []
    for index in range(2):
        share, share_predictions = AmodalMetrics(), []
        run = _Run(model, _checked_processor(None, model), "gt", InferenceOptions(), share_predictions)
        run.add_dataset(share, clip_dataset, 1, 6, Processes(index, 2), progress=False)
        assert len(share) > 0  # each process evaluates some tracks
        metrics.merge(share)
        predictions += share_predictions
    assert metrics.compute() == dataclasses.replace(whole, run_settings={})
    assert predictions == expected_predictions


def test_two_processes_evaluate_each_object_once_with_the_numbers_of_one(image_folder, tmp_path):
    common = [
        "--dataset",
        str(image_folder),
        "--batch-size",
        "2",
        "--seed",
        "5",
        "--save-predictions",
        "--dtype",
        "float32",
    ]
    assert main_on_one_thread(["evaluate", *common, "--out", str(tmp_path / "one")]) == 0
    run_two_processes(["evaluate", *common, "--out", str(tmp_path / "two")], tmp_path)

    one, two = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two"))
    assert (one["run_settings"].pop("num_processes"), two["run_settings"].pop("num_processes")) == (1, 2)
    assert one == two
    predictions = [json.loads((tmp_path / name / "predictions.json").read_text()) for name in ("one", "two")]
    assert predictions[0] == predictions[1]
    objects = [(record["image_id"], record["object_index"]) for record in predictions[1]]
    assert len(objects) == len(set(objects)) == one["num_objects_added"]


def shard_tables(folder) -> dict[str, pyarrow.Table]:
    return {path.name: pyarrow.parquet.read_table(path) for path in sorted((folder / "data").glob("*.parquet"))}


def test_a_killed_predict_resumed_on_two_processes_writes_the_masks_of_one(image_folder, tmp_path):
    common = ["--dataset", str(image_folder), "--batch-size", "2", "--rows-per-shard", "1", "--dtype", "float32"]
    assert main_on_one_thread(["predict", *common, "--out", str(tmp_path / "one")]) == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "c2f_hf.cli", "predict", *common, "--out", str(killed)],
        env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not any((killed / "data").glob("*.parquet")):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no shard appeared in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {path.name: path.stat().st_mtime_ns for path in (killed / "data").glob("*.parquet")}
    assert 0 < len(finished) < 4, "the run was not killed midway"

    output = run_two_processes(["predict", *common, "--out", str(killed)], tmp_path)
    assert f"{len(finished)} of 4 shards already written" in output
    assert {name: (killed / "data" / name).stat().st_mtime_ns for name in finished} == finished
    expected = shard_tables(tmp_path / "one")
    assert len(expected) == 4 and shard_tables(killed) == expected
    assert not list((killed / "data").glob("*.partial"))
    assert (killed / "README.md").read_text() == (tmp_path / "one" / "README.md").read_text().replace(
        "--out one", "--out killed"
    )
