"""Stage 2 on a video dataset from the command line: a video model fine-tunes with fully hidden frames weighted."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.cli import main
from c2f_hf.training.common import object_loader
from c2f_hf.training.config import TrainingConfig
from c2f_testing import save_tiny_video_model
from training_testing import run_cli


def test_a_video_model_fine_tunes_with_its_fully_hidden_frames_weighted(tmp_path):
    data, start, output = tmp_path / "clips", tmp_path / "start", tmp_path / "run"
    main(["data", "synthetic", "--video", "--out", str(data), "--num-train", "3", "--num-test", "1", "--size", "64"])
    save_tiny_video_model(start)
    process = run_cli(
        ["train", "--preset", "tiny_video", "--dataset", str(data), "--init-model", str(start)]
        + ["--output-dir", str(output), "--max-steps", "2", "--batch-size", "2", "--save-every", "100"]
        + ["--eval-every", "100", "--set", "log_every=1", "--set", "sample_every=100", "--set", "eval_max_objects=2"]
        + ["--set", "hidden_frame_token_weight=8"],
        tmp_path,
    )
    assert process.wait() == 0, process.stdout.read()[-3000:]
    assert json.loads((output / "training_config.json").read_text())["hidden_frame_token_weight"] == 8.0
    logged = [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]
    token_losses = [entry["token"] for entry in logged if "token" in entry]
    assert len(token_losses) == 2 and all(math.isfinite(value) and value > 0 for value in token_losses)
    tuned = C2FSegForAmodalSegmentation.from_pretrained(output / "final", dtype=torch.float32)
    assert tuned.config.transformer_config.num_frames == 2
    before, after = load_file(start / "model.safetensors"), load_file(output / "final" / "model.safetensors")
    assert not all(torch.equal(before[key], after[key]) for key in before if key.startswith("transformer."))


def test_a_video_model_refuses_the_second_crop_of_image_training(tmp_path):
    data = tmp_path / "clips"
    main(["data", "synthetic", "--video", "--out", str(data), "--num-train", "1", "--num-test", "0", "--size", "64"])
    config = TrainingConfig(dataset=str(data), init_model=str(tmp_path / "start"), second_crop_probability=0.5)
    with pytest.raises(ValueError, match="second_crop_probability: a video model crops each window once"):
        object_loader(config, crop_size=64, num_frames=2)
