import json

import numpy as np
import PIL.Image
import torch

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.cli import main
from c2f_hf.visualization import draw_amodal_overlay
from c2f_testing import tiny_config


def test_overlay_tints_visible_green_and_occluded_red():
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    visible = np.zeros((4, 4), dtype=bool)
    visible[0, 0] = True
    amodal = visible.copy()
    amodal[0, 1] = True
    overlay = draw_amodal_overlay(image, [visible], [amodal])
    assert overlay[0, 0, 1] > overlay[0, 0, 0] and overlay[0, 1, 0] > overlay[0, 1, 1]
    assert np.array_equal(overlay[2:], image[2:])


def test_demo_command_writes_scene_overlay_and_results(tmp_path):
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
    scene = PIL.Image.open(tmp_path / "out" / "scene.png")
    assert PIL.Image.open(tmp_path / "out" / "overlay.png").size == scene.size == (256, 256)
