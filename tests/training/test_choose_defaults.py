"""Choosing decoding defaults on validation sets: parsing, the score, a run on a tiny model, applying the choice."""

import json
from pathlib import Path

import pytest

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.cli import main as c2f_main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.evaluation import evaluate_model
from c2f_hf.training.choose_defaults import (
    Setting,
    SettingScores,
    ValidationSet,
    choose,
    main,
    setting_score,
    smallest_gain,
)
from c2f_testing import save_tiny_model


def test_a_validation_set_is_parsed_with_its_split_and_object_count():
    assert ValidationSet.parse("simple-val") == ValidationSet("simple-val", "validation", None)
    assert ValidationSet.parse("synthetic-val:test:800") == ValidationSet("synthetic-val", "test", 800)
    for text in ("", "a:b:1:2", ":validation"):
        with pytest.raises(ValueError, match="--validation must be DATASET"):
            ValidationSet.parse(text)


def test_the_score_is_mean_iou_minus_invented_area():
    per_set = {
        "a": {"miou_full": 80.0, "miou_occ": 40.0, "invented_area": 4.0},
        "b": {"miou_full": 70.0, "miou_occ": 50.0, "invented_area": None},
    }
    assert setting_score(per_set) == pytest.approx((60.0 + 60.0) / 2 - 4.0)


def tiny_model_and_validation_set(tmp_path: Path, num_images: int) -> tuple[Path, Path]:
    """A saved tiny model and a synthetic set of `num_images` 64-px images (its "test" split) under `tmp_path`."""
    model, data = save_tiny_model(tmp_path / "model"), tmp_path / "val"
    synthetic = ["--num-train", "0", "--num-test", str(num_images), "--size", "64"]
    assert c2f_main(["data", "synthetic", "--out", str(data), *synthetic]) == 0
    return model, data


def test_every_setting_is_scored_and_the_best_is_saved_into_a_copy(tmp_path):
    model, data = tiny_model_and_validation_set(tmp_path, num_images=2)
    arguments = ["--model", str(model), "--validation", f"{data}:test", "--num-steps", "1", "--thresholds", "0.4"]
    arguments += ["--enlarge-ratios", "2.5"]
    out, applied = tmp_path / "choice", tmp_path / "applied"
    assert main([*arguments, "--outputs", "refined", "coarse", "--out", str(out), "--apply", str(applied)]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert [item["setting"]["amodal_output"] for item in choice["settings"]] == ["refined", "coarse"]
    saved_top_k = C2FSegForAmodalSegmentation.config_class.from_pretrained(model).sampling_top_k
    assert {item["setting"]["sampling_top_k"] for item in choice["settings"]} == {saved_top_k}, "the model's own"
    best = max(choice["settings"], key=lambda item: item["score"])
    assert choice["chosen"] == best["setting"]
    numbers = best["per_set"][f"{data}:test"]
    assert set(numbers) == {"miou_full", "miou_occ", "invented_area"}
    loaded = C2FSegForAmodalSegmentation.from_pretrained(applied)
    assert loaded.config.amodal_output == best["setting"]["amodal_output"]
    assert loaded.config.num_sampling_steps == 1
    processor = C2FSegImageProcessor.from_pretrained(applied)
    assert (processor.mask_threshold, processor.enlarge_ratio) == (0.4, 2.5)
    assert "| K | top-k | output | threshold | enlarge ratio | second crop |" in (out / "choice.md").read_text()


def test_sampling_top_k_is_a_choice_written_into_the_copy_and_one_is_argmax_decoding(tmp_path):
    model, data = tiny_model_and_validation_set(tmp_path, num_images=2)
    arguments = ["--model", str(model), "--validation", f"{data}:test", "--num-steps", "1", "--outputs", "coarse"]
    arguments += ["--thresholds", "0.5", "--seed", "3"]
    out, applied = tmp_path / "choice", tmp_path / "applied"
    assert main([*arguments, "--sampling-top-ks", "1", "--out", str(out), "--apply", str(applied)]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert choice["chosen"]["sampling_top_k"] == 1
    assert C2FSegForAmodalSegmentation.config_class.from_pretrained(applied).sampling_top_k == 1
    assert "| 1 | 1 | coarse | 0.5 |" in (out / "choice.md").read_text()
    applied_model = C2FSegForAmodalSegmentation.from_pretrained(applied)
    processor = C2FSegImageProcessor.from_pretrained(applied)
    greedy = evaluate_model(applied_model, load_amodal_dataset(data, "test"), image_processor=processor, greedy=True)
    sampled = choice["settings"][0]["per_set"][f"{data}:test"]
    assert sampled["miou_full"] == pytest.approx(100 * greedy.variants["model"].miou_full)
    assert sampled["miou_occ"] == pytest.approx(100 * greedy.variants["model"].miou_occ)


def test_the_second_crop_is_a_choice_written_into_the_copy(tmp_path):
    model, data = tiny_model_and_validation_set(tmp_path, num_images=2)
    arguments = ["--model", str(model), "--validation", f"{data}:test", "--num-steps", "1", "--outputs", "coarse"]
    arguments += ["--thresholds", "0.3", "--second-crop-ratios", "none", "1.5"]
    out, applied = tmp_path / "choice", tmp_path / "applied"
    assert main([*arguments, "--out", str(out), "--apply", str(applied)]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert [item["setting"]["second_crop_ratio"] for item in choice["settings"]] == [None, 1.5]
    assert choice["settings"][0]["per_set"] != choice["settings"][1]["per_set"], "the second crop changes the masks"
    assert C2FSegImageProcessor.from_pretrained(applied).second_crop_ratio == choice["chosen"]["second_crop_ratio"]
    table = (out / "choice.md").read_text()
    assert "| coarse | 0.3 | 2.0 | none |" in table and "| coarse | 0.3 | 2.0 | 1.5 |" in table


@pytest.mark.parametrize("ratio", ["0", "-1", "big", "inf"])
def test_a_bad_second_crop_ratio_is_refused_before_any_scoring(tmp_path, capsys, ratio):
    arguments = ["--model", str(tmp_path / "absent"), "--validation", str(tmp_path / "absent")]
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, "--second-crop-ratios", "none", ratio, "--out", str(tmp_path / "choice")])
    assert stopped.value.code == 2
    assert f"expected 'none' or a positive number, got {ratio!r}" in capsys.readouterr().err
    assert not (tmp_path / "choice").exists()


@pytest.mark.parametrize("top_k", ["0", "100000"])
def test_a_sampling_top_k_outside_the_codebook_is_refused_before_any_scoring(tmp_path, capsys, top_k):
    model = save_tiny_model(tmp_path / "model")
    arguments = ["--model", str(model), "--validation", str(tmp_path / "absent"), "--sampling-top-ks", "2", top_k]
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, "--out", str(tmp_path / "choice")])
    assert stopped.value.code == 2
    assert "--sampling-top-ks must be between 1 and the codebook size" in capsys.readouterr().err
    assert not (tmp_path / "choice").exists()


def numbers(full: float, occ: float, invented: float | None) -> dict[str, float | None]:
    return {"miou_full": full, "miou_occ": occ, "invented_area": invented}


def test_the_smallest_gain_counts_completion_up_and_invented_area_down():
    before = {"a": numbers(70.0, 40.0, 10.0), "b": numbers(60.0, 30.0, None)}
    after = {"a": numbers(71.0, 43.0, 9.5), "b": numbers(60.25, 32.0, None)}
    assert smallest_gain(after, before) == pytest.approx(0.25)
    assert smallest_gain({**after, "a": numbers(71.0, 43.0, 11.0)}, before) == pytest.approx(-1.0)


def test_with_a_model_to_beat_the_widest_margin_wins_not_the_best_score():
    reference = SettingScores(Setting(1, "refined", 0.5, 2.0, 3), {"a": numbers(70.0, 40.0, 10.0)}, 50.0)
    high_score = SettingScores(Setting(1, "coarse", 0.7, 2.0, 3), {"a": numbers(69.9, 48.0, 2.0)}, 57.0)
    wide_margin = SettingScores(Setting(1, "refined", 0.45, 2.0, 3), {"a": numbers(71.0, 41.0, 9.0)}, 47.0)
    narrow_margin = SettingScores(Setting(1, "refined", 0.4, 2.0, 3), {"a": numbers(70.5, 45.0, 9.9)}, 47.8)
    candidates = [high_score, wide_margin, narrow_margin]
    assert choose(candidates, None) is high_score
    assert choose(candidates, reference) is wide_margin
    assert choose([high_score], reference) is None


def test_a_number_no_setting_changes_does_not_block_a_choice_and_ties_go_to_the_score():
    reference = SettingScores(Setting(1, "coarse", 0.5, 2.0, 1), {"a": numbers(70.0, 40.0, 5.0)}, 50.0)
    same_invented = SettingScores(Setting(1, "coarse", 0.5, 2.0, 1, 1.5), {"a": numbers(71.0, 44.0, 5.0)}, 52.5)
    higher_score = SettingScores(Setting(1, "coarse", 0.5, 2.0, 1, 1.75), {"a": numbers(72.0, 45.0, 5.0)}, 53.5)
    worse_somewhere = SettingScores(Setting(1, "coarse", 0.6, 2.0, 1, 1.75), {"a": numbers(75.0, 39.9, 1.0)}, 56.5)
    unchanged = SettingScores(Setting(1, "coarse", 0.5, 2.0, 1), {"a": numbers(70.0, 40.0, 5.0)}, 50.0)
    assert choose([same_invented, higher_score, worse_somewhere, unchanged], reference) is higher_score
    assert choose([unchanged, worse_somewhere], reference) is None


def test_a_setting_equal_to_the_model_to_beat_is_not_chosen_or_applied(tmp_path):
    model, data = tiny_model_and_validation_set(tmp_path, num_images=1)
    saved = C2FSegImageProcessor.from_pretrained(model)
    steps = C2FSegForAmodalSegmentation.config_class.from_pretrained(model).num_sampling_steps
    arguments = ["--model", str(model), "--validation", f"{data}:test", "--num-steps", str(steps), "--outputs"]
    arguments += ["refined", "--thresholds", str(saved.mask_threshold), "--enlarge-ratios", str(saved.enlarge_ratio)]
    out, applied = tmp_path / "choice", tmp_path / "applied"
    assert main([*arguments, "--must-beat", str(model), "--out", str(out), "--apply", str(applied)]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert choice["chosen"] is None and not applied.exists()
    assert choice["must_beat"]["per_set"] == choice["settings"][0]["per_set"]
    table = (out / "choice.md").read_text()
    assert table.startswith("Chosen: none") and "| smallest gain |" in table and "| 0.00 |" in table
    with pytest.raises(ValueError, match=r"--must-beat .*: not a model folder with config.json"):
        main([*arguments, "--must-beat", str(data), "--out", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()
