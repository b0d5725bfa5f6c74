"""Fixtures of the bundle's tests: a tiny video model (the image model is `tests/conftest.py`'s `model`)."""

import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_testing import tiny_video_config


@pytest.fixture(scope="module")
def video_model():
    torch.manual_seed(0)
    return C2FSegForAmodalSegmentation(tiny_video_config()).eval()
