"""Fixtures of the evaluation tests: tiny synthetic image and video datasets and a randomly initialised tiny model."""

import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.cli import main
from c2f_testing import synthetic_video_folder, tiny_config


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    main(["data", "synthetic", "--out", str(folder), "--num-train", "0", "--num-test", "4", "--size", "64"])
    return folder


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    return synthetic_video_folder(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    C2FSegForAmodalSegmentation(tiny_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(model_folder):
    return C2FSegForAmodalSegmentation.from_pretrained(model_folder)
