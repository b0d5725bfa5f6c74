"""The held-out simple-occlusion set: one shape, one rectangle hiding a drawn share of it."""

import numpy as np
import pytest

from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.data.simple_occlusions import (
    SIMPLE_CATEGORIES,
    SimpleOcclusionConfig,
    generate_simple_scenes,
    occluder_mask,
    write_simple_occlusions,
)


def test_each_image_holds_one_shape_hidden_within_the_range():
    config = SimpleOcclusionConfig(image_size=96)
    scenes = list(generate_simple_scenes(config, seed=0, count=12))
    assert [scene.objects[0].category for scene in scenes] == list(SIMPLE_CATEGORIES) * 2
    for scene in scenes:
        (item,) = scene.objects
        assert scene.image.shape == (96, 96, 3)
        assert not (item.visible_mask & ~item.amodal_mask).any()
        # The cut falls on a whole row or column: a few percent above the drawn share at this small size.
        assert 0.15 <= item.occlusion_rate <= 0.7


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
    assert not any(np.array_equal(a.image, b.image) for a in held_out for b in training)
    with pytest.raises(ValueError, match="split must be one of"):
        next(generate_simple_scenes(config, seed=0, count=1, split="validation"))


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
