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
