"""Fixtures of the data tests: a tiny synthetic dataset folder and a private `datasets` cache."""

import pytest

from c2f_hf.data.schema import image_features, load_amodal_dataset, scene_to_row, write_split
from c2f_hf.data.synthetic import SyntheticConfig, generate_scenes

TINY_SIZE = 64


@pytest.fixture(scope="session")
def tiny_config() -> SyntheticConfig:
    return SyntheticConfig(image_size=TINY_SIZE, num_frames=4)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny_config):
    """A folder with `train.parquet` of 6 synthetic 64x64 scenes."""
    folder = tmp_path_factory.mktemp("tiny_synthetic")
    rows = (scene_to_row(scene, f"train-{index}") for index, scene in enumerate(generate_scenes(tiny_config, 7, 6)))
    write_split(rows, image_features(), folder / "train.parquet")
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(tiny_folder, tmp_path_factory):
    return load_amodal_dataset(tiny_folder, "train", cache_dir=str(tmp_path_factory.mktemp("hf_cache")))
