"""The shipped image model does its job on its own domain: on a fixed subset of the synthetic test split, greedy
decoding beats the visible-mask and convex-hull baselines (loose margins, so the test stays fast and stable).

The full-set numbers, with the commands that measured them, are in each model's card.
"""

import pytest

import c2f_hf  # noqa: F401
from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.checkpoints import default_model_path
from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.evaluation import CONVEX_HULL_BASELINE, VISIBLE_BASELINE, EvaluationResults, evaluate_model

MODEL = "model"
# Measured on this subset (greedy): mIoU_full 79.35 against 77.68 (visible) and 76.25 (hull); mIoU_occ 36.06
# against 34.02 (hull). The margins leave room for CPU-dependent rounding, not for a worse model.
FULL_MARGIN = 0.01
OCC_MARGIN = 0.01


@pytest.fixture(scope="module")
def synthetic_results(tmp_path_factory) -> EvaluationResults:
    """The first 10 images of the synthetic test split (`c2f-hf data synthetic --seed 0`), greedy decoding."""
    folder = tmp_path_factory.mktemp("synthetic")
    main(["data", "synthetic", "--out", str(folder), "--num-train", "0", "--num-test", "10", "--seed", "0"])
    model = C2FSegForAmodalSegmentation.from_pretrained(default_model_path())
    processor = C2FSegImageProcessor.from_pretrained(default_model_path())
    dataset = load_amodal_dataset(folder, "test")
    return evaluate_model(model, dataset, image_processor=processor, greedy=True, progress=False)


def test_image_model_beats_both_baselines_on_synthetic_scenes(synthetic_results: EvaluationResults):
    variants = synthetic_results.variants
    model, visible, hull = (variants[name] for name in (MODEL, VISIBLE_BASELINE, CONVEX_HULL_BASELINE))
    assert model.miou_full > visible.miou_full + FULL_MARGIN
    assert model.miou_full > hull.miou_full + FULL_MARGIN
    assert model.miou_occ > hull.miou_occ + OCC_MARGIN
