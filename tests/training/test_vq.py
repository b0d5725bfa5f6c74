"""Stage 1 (`c2f_hf.training.vq`): the mask VQ-GAN learns, saves and resumes."""

import json

import torch

from c2f_hf import C2FSegVQModel
from c2f_hf.training.vq import reconstruction_loss
from c2f_testing import random_object_batch, tiny_config
from training_testing import STEPS, assert_same_weights, common_flags, kill_after_checkpoint, run_cli


def test_vq_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = C2FSegVQModel(tiny_config().vq_config)
    _, _, amodal = random_object_batch(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    first = reconstruction_loss(model, amodal)[0].item()
    for _ in range(30):
        loss, _ = reconstruction_loss(model, amodal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert reconstruction_loss(model, amodal)[0].item() < 0.7 * first


def test_vq_run_saves_a_loadable_model_and_logs(vq_run):
    model = C2FSegVQModel.from_pretrained(vq_run / "final")
    assert model.config.codebook_size == tiny_config().vq_config.codebook_size
    log = [json.loads(line) for line in (vq_run / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == list(range(1, STEPS + 1))
    assert any("train_reconstruction_miou" in entry for entry in log)
    assert json.loads((vq_run / "training_config.json").read_text())["max_steps"] == STEPS


def test_killed_vq_run_resumes_to_the_same_weights(workspace, vq_run):
    output = workspace / "vq_killed"
    process = run_cli(["train-vq", *common_flags(workspace, output)], workspace)
    kill_after_checkpoint(process, output, step=2)
    assert not (output / "final").exists()
    resumed = run_cli(["train-vq", *common_flags(workspace, output), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    steps = [json.loads(line)["step"] for line in (output / "log.jsonl").read_text().splitlines()]
    assert max(steps) == STEPS
    assert_same_weights(vq_run / "final", output / "final")
