"""The report writer (`c2f_hf.evaluation.report`)."""

import json
import math

from PIL import Image

from c2f_hf.evaluation import VISIBLE_BASELINE, AmodalMetrics, EvaluationResults, prediction_variants, write_report
from evaluation_testing import box_mask


def test_write_report_files(tmp_path):
    metrics = AmodalMetrics()
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    for index in range(3):
        metrics.add(prediction_variants(amodal, visible), amodal, visible, image_id=index, score=0.5 + index / 10)
    results = metrics.compute()
    paths = write_report(results, tmp_path / "report", chart_size=(800, 600))
    assert {path.name for path in (tmp_path / "report").iterdir()} == {"metrics.json", "metrics.md", "per_bin_miou.png"}

    loaded = json.loads(paths["json"].read_text())
    assert EvaluationResults.from_dict(loaded) == results
    assert loaded["variants"]["model"]["bins"][3]["num_objects"] == 3

    markdown = paths["markdown"].read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0].strip("| ") for row in rows[1:5]] == list(results.variants)
    assert "| model | 100.00 | 100.00 | n/a |" in markdown and "AR100" in rows[0]  # no unoccluded object
    assert f"| {VISIBLE_BASELINE} | 50.00 | 0.00 | n/a |" in markdown
    model = loaded["variants"]["model"]
    assert (model["invented_area"], model["num_unoccluded_objects"]) == (None, 0)

    with Image.open(paths["chart"]) as chart:
        assert chart.size == (800, 600)
        assert len(chart.getcolors(maxcolors=100_000)) > 3  # bars, text and axes were drawn


def test_report_without_objects_still_writes(tmp_path):
    results = AmodalMetrics(occlusion_range=(0.1, 0.7)).compute()
    paths = write_report(results, tmp_path)
    assert "Objects counted: 0 of 0" in paths["markdown"].read_text()
    assert math.isclose(json.loads(paths["json"].read_text())["occlusion_range"][1], 0.7)


def test_report_shows_the_invented_area_of_unoccluded_objects(tmp_path):
    metrics = AmodalMetrics()
    square = box_mask(0, 0, 10, 10, size=20)
    prediction = square | box_mask(15, 0, 16, 5, size=20)  # 5 pixels outside the 100-pixel square
    metrics.add({"model": prediction, VISIBLE_BASELINE: square}, square, square, image_id=0)
    half_visible = box_mask(0, 0, 5, 10, size=20)
    metrics.add({"model": prediction, VISIBLE_BASELINE: half_visible}, square, half_visible, image_id=0)
    paths = write_report(metrics.compute(), tmp_path)

    table = [line for line in paths["markdown"].read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    column = header.index("invented % (unoccluded)")
    assert header[: column + 1] == ["Variant", "mIoU_full", "mIoU_occ", "invented % (unoccluded)"]
    cells = {row.split(" | ")[0].strip("| "): [cell.strip() for cell in row.strip("|").split("|")] for row in table[2:]}
    assert cells["model"][column] == "5.00" and cells[VISIBLE_BASELINE][column] == "0.00"
    assert "over the 1 objects with an empty occluded region" in paths["markdown"].read_text()
    model = json.loads(paths["json"].read_text())["variants"]["model"]
    assert model["invented_area"] == 0.05 and model["num_unoccluded_objects"] == 1
