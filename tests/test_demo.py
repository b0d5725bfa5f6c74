import json

import numpy as np
import PIL.Image
import torch

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.cli import main
from c2f_hf.demo import PANEL_GAP, PANEL_SIDE, TITLE_HEIGHT, demo_figure
from c2f_hf.visualization import draw_label_strip, object_colour, upscale
from c2f_testing import tiny_config


def _square_half_hidden(size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grey image, visible left half of a square, the whole square) at `size` x `size`."""
    image = np.full((size, size, 3), 100, dtype=np.uint8)
    amodal = np.zeros((size, size), dtype=bool)
    amodal[16:48, 16:48] = True
    visible = amodal.copy()
    visible[:, 32:] = False
    return image, visible, amodal


def test_demo_figure_is_input_visible_predicted_truth_side_by_side_over_a_legend():
    image, visible, amodal = _square_half_hidden()
    figure = demo_figure(image, [visible], [visible], [amodal], ["1 square: IoU 0.50"])
    assert figure.dtype == np.uint8 and figure.shape[1] == 4 * PANEL_SIDE + 3 * PANEL_GAP
    assert figure.shape[0] > TITLE_HEIGHT + PANEL_SIDE, "a legend sits under the panels"
    panels = [
        figure[TITLE_HEIGHT : TITLE_HEIGHT + PANEL_SIDE, i * (PANEL_SIDE + PANEL_GAP) :][:, :PANEL_SIDE]
        for i in range(4)
    ]
    np.testing.assert_array_equal(panels[0], upscale(image, PANEL_SIDE))
    hidden_pixel = (40 * 8, 40 * 8)
    assert np.array_equal(panels[2][hidden_pixel], panels[1][hidden_pixel]), "nothing predicted there"
    assert not np.array_equal(panels[3][hidden_pixel], panels[2][hidden_pixel]), "the truth shows the hidden part"


def test_label_strip_paints_each_object_in_its_colour_on_black():
    labels = np.array([[0, 1, 2, 3]])
    strip = draw_label_strip(labels)
    assert strip[0, 0].tolist() == [0, 0, 0]
    assert [tuple(strip[0, k]) for k in (1, 2, 3)] == [object_colour(0), object_colour(1), object_colour(2)]


def test_demo_command_writes_the_figure_the_scene_and_results(tmp_path, capsys):
    torch.manual_seed(0)
    C2FSegForAmodalSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    C2FSegImageProcessor(crop_resolution=64).save_pretrained(tmp_path / "model")
    assert main(["demo", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out"), "--greedy"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert 3 <= len(results["objects"]) <= 8
    for entry in results["objects"]:
        assert 0.0 <= entry["iou_full"] <= 1.0
        assert entry["iou_occ"] is None or 0.0 <= entry["iou_occ"] <= 1.0
        assert (entry["iou_occ"] is None) == (entry["true_occlusion_rate"] == 0.0)
    assert PIL.Image.open(tmp_path / "out" / "scene.png").size == (256, 256)
    assert PIL.Image.open(tmp_path / "out" / "demo.png").size[0] == 4 * PANEL_SIDE + 3 * PANEL_GAP
    assert "demo.png" in capsys.readouterr().out
