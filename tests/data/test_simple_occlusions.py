"""The held-out simple-occlusion set: one shape, one rectangle hiding a drawn share of it."""

import numpy as np
import pytest

from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.data.simple_occlusions import (
    SIMPLE_CATEGORIES,
    SimpleOcclusionConfig,
    _window_occluder,
    generate_simple_scenes,
    occluder_mask,
    write_simple_occlusions,
)


def test_each_image_holds_one_shape_hidden_within_the_range():
    config = SimpleOcclusionConfig(image_size=96)
    scenes = list(generate_simple_scenes(config, seed=0, count=14))
    assert [scene.objects[0].category for scene in scenes] == list(SIMPLE_CATEGORIES) * 2
    for scene in scenes:
        (item,) = scene.objects
        assert scene.image.shape == (96, 96, 3)
        assert not (item.visible_mask & ~item.amodal_mask).any()
        # The cut falls on a whole row or column: a few percent above the drawn share at this small size.
        assert 0.2 <= item.occlusion_rate <= 0.7


def test_images_depend_only_on_seed_and_index():
    config = SimpleOcclusionConfig(image_size=64)
    first = list(generate_simple_scenes(config, seed=3, count=4))
    again = list(generate_simple_scenes(config, seed=3, count=4))
    other = list(generate_simple_scenes(config, seed=4, count=4))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again))
    assert not all(np.array_equal(a.image, b.image) for a, b in zip(first, other))


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_the_occluder_comes_in_from_its_side(side: str):
    amodal = np.zeros((40, 40), dtype=bool)
    amodal[10:30, 10:30] = True
    occluder = occluder_mask(amodal, side, hidden=0.5, margin=2)
    assert (amodal & occluder).sum() == 200
    edge = {"left": occluder[20, 8], "right": occluder[20, 31], "top": occluder[8, 20], "bottom": occluder[31, 20]}
    assert edge[side]


def test_the_set_is_written_in_the_common_schema(tmp_path):
    assert write_simple_occlusions(tmp_path, num_images=3, seed=0, config=SimpleOcclusionConfig(image_size=64)) == 3
    rows = load_amodal_dataset(tmp_path, "test")
    assert rows.num_rows == 3 and (tmp_path / "README.md").is_file()


def test_a_bad_range_is_refused():
    with pytest.raises(ValueError, match="min_hidden <= max_hidden"):
        SimpleOcclusionConfig(min_hidden=0.7, max_hidden=0.3)


def test_training_images_come_from_their_own_stream_never_the_held_out_one():
    config = SimpleOcclusionConfig(image_size=64)
    held_out = list(generate_simple_scenes(config, seed=0, count=6))
    training = list(generate_simple_scenes(config, seed=0, count=6, split="train"))
    validation = list(generate_simple_scenes(config, seed=0, count=6, split="validation"))
    assert not any(np.array_equal(a.image, b.image) for a in held_out for b in training + validation)
    with pytest.raises(ValueError, match="split must be one of"):
        next(generate_simple_scenes(config, seed=0, count=1, split="val"))


def test_training_images_mix_unoccluded_objects_with_every_share_hidden():
    scenes = list(generate_simple_scenes(SimpleOcclusionConfig(image_size=96), seed=0, count=70, split="train"))
    rates = np.array([scene.objects[0].occlusion_rate for scene in scenes])
    assert 0.05 <= (rates == 0).mean() <= 0.5, "about a quarter of the training objects are not hidden at all"
    assert (rates > 0.0).any() and (rates < 0.2).any() and (rates > 0.5).any()


def test_a_window_occluder_lets_the_shape_show_through_its_hole():
    amodal = np.zeros((64, 64), dtype=bool)
    amodal[16:48, 16:48] = True
    occluder = _window_occluder(amodal, "left", np.random.default_rng(0))
    rows, columns = np.flatnonzero(occluder.any(axis=1)), np.flatnonzero(occluder.any(axis=0))
    box = np.zeros_like(occluder)
    box[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1] = True
    hole = box & ~occluder
    assert (hole & amodal).any() and (occluder & amodal).any()


def test_the_validation_set_is_written_as_its_own_split(tmp_path):
    config = SimpleOcclusionConfig(image_size=64)
    assert write_simple_occlusions(tmp_path, num_images=2, seed=0, config=config, split="validation") == 2
    assert load_amodal_dataset(tmp_path, "validation").num_rows == 2
    with pytest.raises(ValueError, match="split must be one of"):
        write_simple_occlusions(tmp_path, num_images=2, seed=0, config=config, split="train")


def test_synthetic_command_appends_simple_training_occlusions_to_the_train_split_only(tmp_path, capsys):
    arguments = ["--num-train", "2", "--num-test", "1", "--size", "64", "--simple-occlusions", "3"]
    assert main(["data", "synthetic", "--out", str(tmp_path), *arguments]) == 0
    train, test = load_amodal_dataset(tmp_path, "train"), load_amodal_dataset(tmp_path, "test")
    assert train.num_rows == 5 and test.num_rows == 1
    assert train["image_id"][2:] == ["train-simple-0", "train-simple-1", "train-simple-2"]
    assert "--simple-occlusions 3" in (tmp_path / "README.md").read_text()
    video = ["--num-train", "1", "--num-test", "0", "--video", "--simple-occlusions", "2"]
    assert main(["data", "synthetic", "--out", str(tmp_path / "video"), *video]) == 1
    assert "--simple-occlusions must be >= 0 and needs an image train split" in capsys.readouterr().err
