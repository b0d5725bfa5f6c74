"""The crop's reach: the share of each hidden part inside the authors' crop, per enlarge ratio."""

import json

import numpy as np
import pytest

from c2f_hf.data import simple_occlusions
from c2f_hf.evaluation.crop_reach import crop_reach, format_table, main


def square(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((100, 100), dtype=bool)
    mask[top : top + height, left : left + width] = True
    return mask


# A 20x20 square whose right half (cols 50-59) is hidden: at ratio 2 the crop spans cols [35, 56), 6 of the 10
# hidden columns; at ratio 3 it spans [30, 61), all of them. A 10x10 square whose lower 6 rows (15-20) are hidden:
# at ratio 2 the crop spans rows [8, 17), 3 of the 6; at ratio 3 rows [6, 19), 5 of them.
HALF_HIDDEN = (square(40, 40, 20, 10), square(40, 40, 20, 20))
LOWER_HIDDEN = (square(10, 70, 4, 10), square(10, 70, 10, 10))
UNOCCLUDED = (square(70, 10, 10, 10), square(70, 10, 10, 10))
NEVER_VISIBLE = (np.zeros((100, 100), dtype=bool), square(70, 70, 5, 5))


def test_the_ceiling_is_the_mean_hidden_share_inside_each_crop():
    two_ratios = crop_reach([HALF_HIDDEN, LOWER_HIDDEN, UNOCCLUDED, NEVER_VISIBLE], [2.0, 3.0])
    at_two, at_three = two_ratios
    assert at_two.num_occluded_objects == at_three.num_occluded_objects == 2
    assert at_two.miou_occ_ceiling == pytest.approx((120 / 200 + 30 / 60) / 2)
    assert at_two.hidden_pixels_in_crop == pytest.approx(150 / 260)
    assert at_three.miou_occ_ceiling == pytest.approx((1 + 50 / 60) / 2)
    assert at_three.hidden_pixels_in_crop == pytest.approx(250 / 260)
    assert "| 2 | none | 2 | 55.00 | 57.69 |" in format_table(two_ratios)


# With a second crop at 1.75 from the ratio-2 crops: the half-hidden square's amodal part inside the first crop
# reaches its right side (col 55), so the crop grows to cols [34, 63), all 10 hidden columns; the lower-hidden one's
# reaches its bottom side (row 16), so it grows to rows [7, 20), all 6 hidden rows.
def test_a_second_crop_from_a_perfect_first_prediction_holds_what_the_first_crop_cut_off():
    (reach,) = crop_reach([HALF_HIDDEN, LOWER_HIDDEN, UNOCCLUDED, NEVER_VISIBLE], [2.0], second_crop_ratio=1.75)
    assert (reach.num_occluded_objects, reach.second_crop_ratio) == (2, 1.75)
    assert reach.miou_occ_ceiling == pytest.approx(1.0) and reach.hidden_pixels_in_crop == pytest.approx(1.0)
    assert "| 2 | 1.75 | 2 | 100.00 | 100.00 |" in format_table([reach])
    for ratio in (0.0, float("nan")):
        with pytest.raises(ValueError, match=f"second_crop_ratio: expected a positive number, got {ratio}"):
            crop_reach([HALF_HIDDEN], [2.0], second_crop_ratio=ratio)


def test_a_ratio_that_is_not_positive_or_no_occluded_object_is_refused():
    with pytest.raises(ValueError, match="enlarge_ratios: expected positive ratios, got 0"):
        crop_reach([HALF_HIDDEN], [2.0, 0.0])
    with pytest.raises(ValueError, match="no occluded object"):
        crop_reach([UNOCCLUDED, NEVER_VISIBLE], [2.0])


def test_the_command_reads_a_dataset_folder(tmp_path, capsys):
    simple_occlusions.main(["--out", str(tmp_path), "--num-images", "6", "--seed", "0"])
    assert main(["--dataset", str(tmp_path), "--enlarge-ratios", "2", "3", "--json"]) == 0
    narrow, wide = json.loads(capsys.readouterr().out)
    assert narrow["num_occluded_objects"] == wide["num_occluded_objects"] == 6
    assert 0 < narrow["miou_occ_ceiling"] <= wide["miou_occ_ceiling"] <= 1
    assert main(["--dataset", str(tmp_path), "--second-crop-ratio", "1.75", "--json"]) == 0
    (second,) = json.loads(capsys.readouterr().out)
    assert second["second_crop_ratio"] == 1.75 and narrow["miou_occ_ceiling"] <= second["miou_occ_ceiling"] <= 1
    with pytest.raises(SystemExit) as stopped:
        main(["--dataset", str(tmp_path), "--second-crop-ratio", "nan"])
    assert stopped.value.code == 2
    assert "second_crop_ratio: expected a positive number, got nan" in capsys.readouterr().err
