"""The synthetic amodal scene generator: determinism, mask consistency, class balance, video occlusion."""

import numpy as np
import pytest

from c2f_hf.cli import main
from c2f_hf.data.schema import available_splits
from c2f_hf.data.synthetic import (
    SHAPE_CATEGORIES,
    SyntheticConfig,
    generate_clip,
    generate_scene,
    generate_scenes,
    scene_rng,
)


def test_same_seed_gives_the_same_scene_and_other_seeds_differ(tiny_config):
    first = generate_scene(tiny_config, scene_rng(3, 5))
    second = generate_scene(tiny_config, scene_rng(3, 5))
    other = generate_scene(tiny_config, scene_rng(4, 5))
    assert np.array_equal(first.image, second.image)
    assert [item.category for item in first.objects] == [item.category for item in second.objects]
    for left, right in zip(first.objects, second.objects):
        assert np.array_equal(left.amodal_mask, right.amodal_mask)
        assert np.array_equal(left.visible_mask, right.visible_mask)
    assert not np.array_equal(first.image, other.image)


def test_scene_depends_only_on_seed_split_and_index(tiny_config):
    stream = list(generate_scenes(tiny_config, 1, 3, split="test"))
    alone = generate_scene(tiny_config, scene_rng(1, 2, "test"))
    assert np.array_equal(stream[2].image, alone.image)
    assert not np.array_equal(stream[2].image, generate_scene(tiny_config, scene_rng(1, 2, "train")).image)


def test_masks_are_consistent_with_depth_order(tiny_config):
    for scene in generate_scenes(tiny_config, 0, 20):
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        assert 3 <= len(scene.objects) <= 8
        in_front = np.zeros((64, 64), dtype=bool)
        for item in reversed(scene.objects):
            amodal_area, visible_area = item.amodal_mask.sum(), item.visible_mask.sum()
            assert not (item.visible_mask & ~item.amodal_mask).any()
            assert np.array_equal(item.visible_mask, item.amodal_mask & ~in_front)
            assert item.occlusion_rate == pytest.approx(1 - visible_area / amodal_area)
            assert visible_area >= tiny_config.min_visible_pixels
            assert 0.0 <= item.occlusion_rate <= tiny_config.max_occlusion_rate
            x, y, width, height = item.bbox
            rows, columns = np.nonzero(item.amodal_mask)
            assert (x, y, width, height) == (columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1)
            in_front |= item.amodal_mask


def test_classes_are_balanced_and_occlusion_spans_the_range(tiny_config):
    objects = [item for scene in generate_scenes(tiny_config, 11, 150) for item in scene.objects]
    counts = np.array([sum(item.category == name for item in objects) for name in SHAPE_CATEGORIES])
    assert len(SHAPE_CATEGORIES) >= 10
    assert counts.min() >= 0.6 * counts.mean() and counts.max() <= 1.4 * counts.mean()
    rates = np.array([item.occlusion_rate for item in objects])
    assert (rates == 0).any() and rates.max() > 0.75
    assert np.histogram(rates, bins=9, range=(0, 0.9))[0].min() > 0


def test_image_size_is_configurable():
    scene = generate_scene(SyntheticConfig(image_size=48), scene_rng(0, 0))
    assert scene.image.shape == (48, 48, 3)
    assert all(item.amodal_mask.shape == (48, 48) for item in scene.objects)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="min_objects"):
        SyntheticConfig(min_objects=5, max_objects=4)


def test_clips_hide_some_object_completely_in_some_frames(tiny_config):
    hidden_somewhere = False
    for index in range(4):
        clip = generate_clip(tiny_config, scene_rng(2, index))
        assert clip.frames.shape == (4, 64, 64, 3)
        for track in clip.objects:
            assert track.amodal_masks.shape == track.visible_masks.shape == (4, 64, 64)
            assert not (track.visible_masks & ~track.amodal_masks).any()
            assert track.visible_masks.sum(axis=(1, 2)).max() >= tiny_config.min_visible_pixels
            areas = track.amodal_masks.sum(axis=(1, 2)), track.visible_masks.sum(axis=(1, 2))
            expected = [1 - v / a if a else 0.0 for a, v in zip(*areas)]
            assert np.allclose(track.occlusion_rates, expected)
            hidden_somewhere |= bool(((areas[0] > 0) & (areas[1] == 0)).any())
        assert not np.array_equal(clip.frames[0], clip.frames[-1])
    assert hidden_somewhere


def test_cli_writes_only_the_splits_asked_for(tmp_path):
    assert (
        main(["data", "synthetic", "--out", str(tmp_path), "--num-train", "0", "--num-test", "1", "--size", "64"]) == 0
    )
    assert available_splits(tmp_path) == ["test"] and (tmp_path / "README.md").exists()


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        (["0", "0"], "--num-train and --num-test are both 0: there would be no data to write"),
        (["-1", "2"], "--num-train must be >= 0, got -1"),
    ],
)
def test_cli_refuses_counts_that_write_nothing(tmp_path, capsys, counts, message):
    arguments = ["data", "synthetic", "--out", str(tmp_path / "out"), "--num-train", counts[0], "--num-test", counts[1]]
    assert main(arguments) == 1
    assert capsys.readouterr().err.strip() == f"c2f-hf data: {message}"
    assert not (tmp_path / "out").exists()
