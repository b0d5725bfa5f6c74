"""`c2f-hf evaluate` (`c2f_hf.evaluation.cli`) in-process, on tiny synthetic datasets."""

import json

import pytest
from evaluation_testing import VARIANTS
from PIL import Image

from c2f_hf.cli import main
from c2f_hf.evaluation import EvaluationResults


def test_cli_evaluate_writes_the_report(image_folder, model_folder, tmp_path, capsys):
    out = tmp_path / "report"
    arguments = ["--model", str(model_folder), "--dataset", str(image_folder), "--out", str(out)]
    options = ["--max-objects", "6", "--batch-size", "4", "--num-steps", "2", "--occlusion-range", "0", "0.9"]
    assert main(["evaluate", *arguments, *options]) == 0

    assert {path.name for path in out.iterdir()} == {"metrics.json", "metrics.md", "per_bin_miou.png"}
    results = EvaluationResults.from_dict(json.loads((out / "metrics.json").read_text()))
    assert results.num_objects_added == 6 and results.occlusion_range == (0.0, 0.9)
    settings = results.run_settings
    assert settings["model"] == str(model_folder) and settings["dataset"] == str(image_folder)
    assert settings["dataset_split"] == "test" and settings["num_steps"] == 2 and settings["batch_size"] == 4
    assert settings["seed"] == 0 and settings["greedy"] is False and settings["visible_source"] == "gt"
    assert settings["max_objects"] == 6 and settings["crop_size"] > 0 and settings["device"] == "cpu"
    markdown = (out / "metrics.md").read_text()
    assert all(f"| {name} |" in markdown for name in VARIANTS)
    assert markdown.strip() in capsys.readouterr().out
    with Image.open(out / "per_bin_miou.png") as chart:
        chart.load()
        assert chart.size == (960, 720)

    with pytest.raises(SystemExit):
        main(["evaluate", *arguments, "--batch-size", "0"])
    with pytest.raises(SystemExit, match="predicted_visible_masks"):
        main(["evaluate", *arguments, "--visible-source", "predicted"])
