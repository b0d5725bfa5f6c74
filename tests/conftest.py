"""Shared fixtures: tiny configurations so the whole suite runs on 2 CPU cores."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation  # noqa: E402
from c2f_testing import tiny_config  # noqa: E402


@pytest.fixture
def config() -> C2FSegConfig:
    return tiny_config()


@pytest.fixture
def model(config: C2FSegConfig) -> C2FSegForAmodalSegmentation:
    torch.manual_seed(0)
    return C2FSegForAmodalSegmentation(config).eval()


@pytest.fixture(scope="session")
def clip_dataset(tmp_path_factory):
    """Two 5-frame 64-pixel synthetic test clips as a loaded `datasets` split."""
    from c2f_hf.data.schema import clip_to_row, load_amodal_dataset, video_features, write_split
    from c2f_hf.data.synthetic import SyntheticConfig, generate_clips

    folder = tmp_path_factory.mktemp("clips")
    config = SyntheticConfig(image_size=64, num_frames=5)
    rows = (clip_to_row(clip, f"test-{index}") for index, clip in enumerate(generate_clips(config, 0, 2, "test")))
    write_split(rows, video_features(), folder / "test.parquet")
    return load_amodal_dataset(folder, "test", cache_dir=str(folder / "cache"))
