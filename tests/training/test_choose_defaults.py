"""Choosing decoding defaults on validation sets: parsing, the score, a run on a tiny model, applying the choice."""

import json

import pytest

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.cli import main as c2f_main
from c2f_hf.training.choose_defaults import ValidationSet, main, setting_score
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


def test_every_setting_is_scored_and_the_best_is_saved_into_a_copy(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    data = tmp_path / "val"
    synthetic = ["--num-train", "0", "--num-test", "2", "--size", "64"]
    assert c2f_main(["data", "synthetic", "--out", str(data), *synthetic]) == 0
    arguments = ["--model", str(model), "--validation", f"{data}:test", "--num-steps", "1", "--thresholds", "0.4"]
    arguments += ["--enlarge-ratios", "2.5"]
    out, applied = tmp_path / "choice", tmp_path / "applied"
    assert main([*arguments, "--outputs", "refined", "coarse", "--out", str(out), "--apply", str(applied)]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert [item["setting"]["amodal_output"] for item in choice["settings"]] == ["refined", "coarse"]
    best = max(choice["settings"], key=lambda item: item["score"])
    assert choice["chosen"] == best["setting"]
    numbers = best["per_set"][f"{data}:test"]
    assert set(numbers) == {"miou_full", "miou_occ", "invented_area"}
    loaded = C2FSegForAmodalSegmentation.from_pretrained(applied)
    assert loaded.config.amodal_output == best["setting"]["amodal_output"]
    assert loaded.config.num_sampling_steps == 1
    processor = C2FSegImageProcessor.from_pretrained(applied)
    assert (processor.mask_threshold, processor.enlarge_ratio) == (0.4, 2.5)
    assert "| K | output | threshold | enlarge ratio |" in (out / "choice.md").read_text()
