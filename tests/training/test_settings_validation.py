"""Training settings are typed, range-checked and finite when loaded, whichever way they come in (preset, YAML
`--config`, `--set`, flags, `model_overrides`), with the field named in a one-line error."""

import dataclasses
import math

import pytest

from c2f_hf.cli import main
from c2f_hf.data.transforms import VisibleMaskAugmentation
from c2f_hf.training.config import AUGMENTATION_CHECKS, parse_overrides, read_config_file, resolve_config

STAGE_TWO = {"vq_model": "vq"}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("save_every", "1e3", "save_every: expected a positive integer, got '1e3'"),
        ("save_every", 1000.5, "save_every: expected a positive integer, got 1000.5"),
        ("eval_every", 0, "eval_every: expected a positive integer, got 0"),
        ("sample_every", 0, "sample_every: expected a positive integer, got 0"),
        ("eval_max_objects", -1, "eval_max_objects: expected a positive integer, got -1"),
        ("batch_size", True, "batch_size: expected a positive integer, got True"),
        ("keep_checkpoints", -1, "keep_checkpoints: expected a positive integer, got -1"),
        ("keep_checkpoints", 0, "keep_checkpoints: expected a positive integer, got 0"),
        ("warmup_steps", -1, "warmup_steps: expected a non-negative integer, got -1"),
        ("seed", -3, r"seed: expected a non-negative integer below 2\*\*32, got -3"),
        ("max_grad_norm", -1, "max_grad_norm: expected a positive finite number, got -1"),
        ("learning_rate", math.nan, "learning_rate: expected a positive finite number, got nan"),
        ("learning_rate", math.inf, "learning_rate: expected a positive finite number, got inf"),
        ("weight_decay", -0.1, "weight_decay: expected a non-negative finite number, got -0.1"),
        ("flip_probability", 1.5, r"flip_probability: expected a probability in \[0, 1\], got 1.5"),
        ("betas", [0.9], r"betas: expected two numbers in \[0, 1\), got \[0.9\]"),
        ("betas", [0.9, 1.0], r"betas\[1\]: expected a number in \[0, 1\), got 1.0"),
        ("mixed_precision", "fp32", r"mixed_precision: expected one of \['no', 'fp8', 'fp16', 'bf16'\], got 'fp32'"),
        ("gradient_checkpointing", "yes", "gradient_checkpointing: expected true or false, got 'yes'"),
        ("dataset", 5, "dataset: expected text, got 5"),
        ("report_to", [1], r"report_to\[0\]: expected text, got 1"),
        (
            "augmentation",
            {"blur_probability": 2},
            r"augmentation.blur_probability: expected a probability in \[0, 1\], got 2",
        ),
        ("augmentation", {"blur_size": 2.5}, "augmentation.blur_size: expected a positive integer, got 2.5"),
        ("augmentation", [1], "augmentation: expected a mapping, got list"),
    ],
)
def test_a_setting_out_of_its_kind_or_range_is_refused_naming_it(setting, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        resolve_config("c2f", "micro", STAGE_TWO, {setting: value})


def test_every_augmentation_field_has_a_check_and_its_ranges_are_not_empty():
    assert set(AUGMENTATION_CHECKS) == {field.name for field in dataclasses.fields(VisibleMaskAugmentation)}
    with pytest.raises(ValueError, match=r"^augmentation.min_kernel \(9\) exceeds augmentation.max_kernel \(5\)$"):
        resolve_config("c2f", "micro", STAGE_TWO, {"augmentation": {"min_kernel": 9, "max_kernel": 5}})


@pytest.mark.parametrize(
    ("override", "value", "message"),
    [
        ("choice_temperature", math.nan, "expected a non-negative finite number, got nan"),
        ("choice_temperature", -1.0, "expected a non-negative finite number, got -1.0"),
        ("min_mask_ratio", 1.5, r"expected a probability in \[0, 1\], got 1.5"),
        ("label_smoothing", 1.0, r"expected a number in \[0, 1\), got 1.0"),
        ("num_sampling_steps", 0, "expected a positive integer, got 0"),
        ("sampling_top_k", "3", "expected a positive integer, got '3'"),
    ],
)
def test_model_overrides_are_checked_before_they_reach_the_model(override, value, message):
    with pytest.raises(ValueError, match=f"^model_overrides.{override}: {message}$"):
        resolve_config("c2f", "micro", STAGE_TWO, {"model_overrides": {override: value}})


def test_values_convert_to_the_declared_type_only_when_exact(tmp_path):
    (tmp_path / "settings.yaml").write_text("save_every: 1000.0\nlearning_rate: 1e-3\nmax_grad_norm: 2\n")
    config = resolve_config("c2f", "micro", STAGE_TWO, read_config_file(tmp_path / "settings.yaml"))
    assert type(config.save_every) is int and config.save_every == 1000
    assert type(config.learning_rate) is float and config.learning_rate == 1e-3
    assert type(config.max_grad_norm) is float and config.max_grad_norm == 2.0
    overrides = parse_overrides(["model_overrides={choice_temperature: 3, num_sampling_steps: 2.0}"])
    config = resolve_config("c2f", "micro", STAGE_TWO, overrides)
    assert config.model_overrides == {"choice_temperature": 3.0, "num_sampling_steps": 2}
    assert type(config.model_overrides["num_sampling_steps"]) is int
    (tmp_path / "bad.yaml").write_text("save_every: 1e3\n")
    with pytest.raises(ValueError, match="^save_every: expected a positive integer, got '1e3'$"):
        resolve_config("c2f", "micro", STAGE_TWO, read_config_file(tmp_path / "bad.yaml"))


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--set", "save_every=1e3"], "save_every: expected a positive integer, got '1e3'"),
        (["--set", "max_grad_norm=-1"], "max_grad_norm: expected a positive finite number, got -1"),
        (["--set", "keep_checkpoints=-1"], "keep_checkpoints: expected a positive integer, got -1"),
        (["--eval-every", "0"], "eval_every: expected a positive integer, got 0"),
        (
            ["--set", "model_overrides={choice_temperature: .nan}"],
            "model_overrides.choice_temperature: expected a non-negative finite number, got nan",
        ),
    ],
)
def test_the_train_command_reports_a_bad_setting_in_one_line(tmp_path, capsys, arguments, error):
    (tmp_path / "vq").mkdir()
    flags = ["--preset", "micro", "--dataset", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run")]
    assert main(["train", *flags, "--vq-model", str(tmp_path / "vq"), *arguments]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"c2f-hf train: {error}"]
    assert not (tmp_path / "run").exists()


def test_the_train_vq_command_reports_a_bad_config_file_in_one_line(tmp_path, capsys):
    (tmp_path / "settings.yaml").write_text("batch_size: 4\nlog_every: .inf\n")
    flags = ["--preset", "micro", "--dataset", str(tmp_path / "data"), "--config", str(tmp_path / "settings.yaml")]
    assert main(["train-vq", *flags, "--output-dir", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "c2f-hf train-vq: log_every: expected a positive integer, got inf"
    ]
