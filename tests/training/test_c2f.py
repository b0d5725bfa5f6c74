"""Stage 2 (`c2f_hf.training.c2f`): the C2F model learns, resumes, fine-tunes and starts from a pretrained backbone."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.training.c2f import parameter_groups
from c2f_hf.training.config import resolve_config
from c2f_testing import random_object_batch, tiny_config
from training_testing import assert_same_weights, common_flags, kill_after_checkpoint, run_cli


def test_c2f_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_config()).train()
    model.vq_model.requires_grad_(False)
    pixel_values, visible, amodal = random_object_batch(4)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-3, betas=(0.9, 0.95))

    def loss() -> torch.Tensor:
        return model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0)).loss

    first = loss().item()
    for _ in range(25):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.8 * first


def test_parameter_groups_follow_the_authors():
    model = C2FSegForAmodalSegmentation(tiny_config())
    decayed, not_decayed = parameter_groups(model, 0.01)
    assert decayed["weight_decay"] == 0.01 and not_decayed["weight_decay"] == 0.0
    not_decayed_ids = {id(p) for p in not_decayed["params"]}
    assert id(model.transformer.layers[0].layernorm_before.weight) in not_decayed_ids
    assert id(model.transformer.layers[0].attention.key.bias) in not_decayed_ids
    assert id(model.transformer.layers[0].attention.key.weight) not in not_decayed_ids
    grouped = {id(p) for group in (decayed, not_decayed) for p in group["params"]}
    assert not grouped & {id(p) for p in model.vq_model.parameters()}
    trainable = [model.backbone, model.transformer, model.refiner]
    assert grouped == {id(p) for part in trainable for p in part.parameters()}


def test_c2f_run_kill_resume_and_the_saved_model_predicts(workspace, vq_run):
    reference, killed = workspace / "c2f_full", workspace / "c2f_killed"
    flags = ["train", "--vq-model", str(vq_run / "final")]
    full = run_cli([*flags, *common_flags(workspace, reference)], workspace)
    assert full.wait() == 0, full.stdout.read()[-3000:]
    process = run_cli([*flags, *common_flags(workspace, killed)], workspace)
    kill_after_checkpoint(process, killed, step=2)
    resumed = run_cli([*flags, *common_flags(workspace, killed), "--resume"], workspace)
    assert resumed.wait() == 0, resumed.stdout.read()[-3000:]
    assert_same_weights(reference / "final", killed / "final")
    assert sorted(path.name for path in (reference / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    log = [json.loads(line) for line in (reference / "log.jsonl").read_text().splitlines()]
    assert any("convex_hull_baseline/miou_occ" in entry for entry in log)
    from transformers import pipeline

    segmenter = pipeline("amodal-segmentation", model=str(reference / "final"), trust_remote_code=False)
    import numpy as np

    mask = np.zeros((64, 64), dtype=bool)
    mask[20:40, 20:30] = True
    objects = segmenter(np.zeros((64, 64, 3), dtype=np.uint8), visible_masks=[mask], greedy=True)
    assert objects[0]["amodal_mask"].size == (64, 64)


def test_fine_tuning_from_a_whole_model_folder(workspace, vq_run):
    start, tuned = workspace / "c2f_start", workspace / "c2f_tuned"
    flags = ["train", *common_flags(workspace, start, steps=2)]
    first = run_cli([*flags, "--vq-model", str(vq_run / "final")], workspace)
    assert first.wait() == 0, first.stdout.read()[-3000:]
    overrides = "model_overrides={min_mask_ratio: 1.0, num_sampling_steps: 1}"
    second = run_cli(
        ["train", *common_flags(workspace, tuned, steps=2), "--init-model", str(start / "final"), "--set", overrides],
        workspace,
    )
    assert second.wait() == 0, second.stdout.read()[-3000:]
    tuned_config = C2FSegForAmodalSegmentation.config_class.from_pretrained(tuned / "final")
    assert (tuned_config.min_mask_ratio, tuned_config.num_sampling_steps) == (1.0, 1)
    before, after = load_file(start / "final" / "model.safetensors"), load_file(tuned / "final" / "model.safetensors")
    assert all(torch.equal(before[key], after[key]) for key in before if key.startswith("vq_model."))
    assert not all(torch.equal(before[key], after[key]) for key in before if key.startswith("transformer."))
    with pytest.raises(ValueError, match="not both"):
        resolve_config("c2f", "tiny", {"vq_model": "a", "init_model": "b"})


def save_to_hub_cache(model, cache: Path, repo_id: str) -> None:
    """Save `model` where `huggingface_hub` finds `repo_id` offline: `cache/models--org--name/snapshots/<sha>`."""
    revision = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    model.save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_init_backbone_loads_an_imagenet_style_resnet_from_the_offline_hub_cache(workspace, vq_run, tmp_path):
    from transformers import ResNetForImageClassification

    torch.manual_seed(3)
    resnet = ResNetForImageClassification(tiny_config().backbone_config)
    save_to_hub_cache(resnet, tmp_path / "hub", "someone/tiny-resnet")
    script = textwrap.dedent(
        f"""
        import torch
        from c2f_hf.training.c2f import build_model
        from c2f_hf.training.config import resolve_config
        settings = {{"vq_model": {str(vq_run / "final")!r}, "model_config": {str(workspace / "architecture")!r}}}
        model = build_model(resolve_config("c2f", "tiny", settings, {{"init_backbone": "someone/tiny-resnet"}}))
        torch.save(model.backbone.state_dict(), {str(tmp_path / "backbone.pt")!r})
        """
    )
    environment = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, capture_output=True, text=True)
    loaded = torch.load(tmp_path / "backbone.pt", weights_only=True)
    expected = {name.removeprefix("resnet."): tensor for name, tensor in resnet.state_dict().items()}
    assert loaded.keys() <= expected.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, expected[name]), name
    assert resolve_config("c2f", "kins", {"vq_model": "vq"}).init_backbone == "microsoft/resnet-50"
    assert resolve_config("c2f", "tiny", {"vq_model": "vq"}).init_backbone is None


def test_init_backbone_of_another_architecture_is_refused(vq_run, tmp_path):
    from transformers import ResNetConfig, ResNetModel

    from c2f_hf.training.c2f import build_model

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1])).save_pretrained(
        tmp_path / "other"
    )
    settings = {"vq_model": str(vq_run / "final"), "init_backbone": str(tmp_path / "other")}
    config = resolve_config("c2f", "micro", settings)
    with pytest.raises(ValueError, match=r"init_backbone: .* is a ResNet with other \['hidden_sizes'\]"):
        build_model(config)
