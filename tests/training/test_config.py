"""Training settings (`c2f_hf.training.config`, presets): resolution, precision and augmentation."""

import os
import subprocess
import sys
import textwrap

import pytest

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegVQModel
from c2f_hf.cli import main
from c2f_hf.training.common import object_loader
from c2f_hf.training.config import parse_overrides, resolve_config


def test_settings_resolve_preset_file_overrides_and_flags(tmp_path):
    (tmp_path / "settings.yaml").write_text("batch_size: 8\nlearning_rate: 0.002\n")
    from c2f_hf.training.config import read_config_file

    config = resolve_config(
        "c2f",
        "kins",
        read_config_file(tmp_path / "settings.yaml"),
        parse_overrides(["batch_size=12", "betas=[0.8, 0.9]"]),
        {"vq_model": "vq", "max_steps": 5, "learning_rate": None},
    )
    assert (config.batch_size, config.learning_rate, config.betas, config.max_steps) == (12, 0.002, (0.8, 0.9), 5)
    assert config.warmup_steps == 5000 and config.weight_decay == 0.01
    with pytest.raises(ValueError, match="unknown training settings"):
        resolve_config("vq", "kins", {"batchsize": 3})
    with pytest.raises(ValueError, match="needs vq_model"):
        resolve_config("c2f", "kins")
    with pytest.raises(ValueError, match=r"model_overrides: unknown fields \['hidden_size'\]"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "model_overrides": {"hidden_size": 8}})
    with pytest.raises(ValueError, match="stage 'c2f' only"):
        resolve_config("vq", "kins", {"model_overrides": {"min_mask_ratio": 1.0}})


def test_the_micro_preset_trains_both_stages_for_smoke_tests(workspace, tmp_path):
    data = ["--dataset", str(workspace / "data"), "--max-steps", "2", "--set", "eval_every=2"]
    assert main(["train-vq", "--preset", "micro", *data, "--output-dir", str(tmp_path / "vq")]) == 0
    vq_model = C2FSegVQModel.from_pretrained(tmp_path / "vq" / "final")
    assert vq_model.config.resolution == 64 and vq_model.config.codebook_size == 16
    stage_two = ["--vq-model", str(tmp_path / "vq" / "final"), "--output-dir", str(tmp_path / "c2f")]
    assert main(["train", "--preset", "micro", *data, *stage_two]) == 0
    model = C2FSegForAmodalSegmentation.from_pretrained(tmp_path / "c2f" / "final")
    assert model.config.image_size == 64 and model.config.transformer_config.hidden_size == 32


def test_precision_comes_from_the_launcher_unless_the_config_sets_it(tmp_path):
    script = textwrap.dedent(
        """
        from c2f_hf.training.common import build_accelerator
        from c2f_hf.training.config import resolve_config
        import sys
        overrides = {} if sys.argv[1] == "unset" else {"mixed_precision": sys.argv[1]}
        config = resolve_config("vq", "micro", {"dataset": "unused", **overrides})
        print(build_accelerator(config).mixed_precision)
        """
    )
    environment = dict(os.environ, ACCELERATE_MIXED_PRECISION="bf16")
    outputs = {
        setting: subprocess.run(
            [sys.executable, "-c", script, setting], env=environment, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        for setting in ("unset", "no")
    }
    assert outputs == {"unset": "bf16", "no": "no"}


def test_paper_presets_use_the_authors_augmentation_per_dataset_and_never_flip():
    expected = {
        "kins": (0.2, 0.4, 0.55, 0.1),
        "cocoa": (0.2, 0.7, 0.6, 0.2),
        "fishbowl": (0.1, 0.5, 0.5, 0.1),
        "movid_a": (0.1, 0.5, 0.5, 0.1),
    }
    names = ("blur_probability", "morphology_probability", "dilation_probability", "blur_after_morphology_probability")
    for preset, values in expected.items():
        config = resolve_config("c2f", preset, {"vq_model": "vq"})
        assert tuple(config.augmentation[name] for name in names) == values and config.flip_probability == 0.0
    assert resolve_config("c2f", "tiny", {"vq_model": "vq"}).flip_probability == 0.5
    with pytest.raises(ValueError, match=r"augmentation: unknown fields \['blur'\]"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "augmentation": {"blur": 0.1}})
    with pytest.raises(ValueError, match="lr_scheduler_type: expected one of"):
        resolve_config("c2f", "kins", {"vq_model": "vq", "lr_scheduler_type": "bogus"})


def test_the_loader_applies_the_configured_augmentation(workspace, tmp_path):
    config = resolve_config(
        "vq",
        "micro",
        {"dataset": str(workspace / "data"), "output_dir": str(tmp_path), "flip_probability": 1.0},
        {"augmentation": {"blur_probability": 1.0, "morphology_probability": 0.0}},
    )
    transform = object_loader(config, 64).dataset.transform
    assert transform.flip_probability == 1.0 and transform.augmentation.blur_probability == 1.0
    batch = next(iter(object_loader(config, 64)))
    assert batch["flipped"].all()
