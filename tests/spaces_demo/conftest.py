"""Shared fixtures of the Space tests: a tiny image model, the Space's tabs on it (with and without a tiny random
SAM model, and with a tiny random SAM 2 tracker for the video tab), and the app launched on 127.0.0.1.

The Space's modules import each other by plain name, as they do when the Space runs `python app.py` in its
folder, so spaces_demo/ goes first on `sys.path` before the test modules import them.
"""

import socket
import sys
from pathlib import Path

import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_testing import save_tiny_sam, tiny_config
from spaces_demo_testing import DEMO_DIR

sys.path.insert(0, str(DEMO_DIR))

from app import build_demo, launch  # noqa: E402
from image_tab import ImageTab  # noqa: E402
from segmenters import ModelSources  # noqa: E402
from video_tab import VideoTab  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random tiny C2F-Seg model whose default K is 2 and processor threshold 0.4."""
    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    C2FSegForAmodalSegmentation(tiny_config(num_sampling_steps=2)).save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=64, mask_threshold=0.4).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sources(tiny_model) -> ModelSources:
    """The models as the default Space runs them (no SAM), the image model being the tiny one; the video tab uses
    the shipped video model."""
    return ModelSources(image=str(tiny_model))


@pytest.fixture(scope="session")
def sam_sources(tiny_model, tmp_path_factory) -> ModelSources:
    """The tiny image model with a tiny random SAM model (`C2F_HF_SAM_MODEL`)."""
    return ModelSources(image=str(tiny_model), sam=str(save_tiny_sam(tmp_path_factory.mktemp("tiny_sam"))))


@pytest.fixture(scope="session")
def sam2_sources(tiny_model, tmp_path_factory) -> ModelSources:
    """The tiny image model and the shipped video model with a tiny random SAM 2 tracker (`C2F_HF_SAM2_MODEL`);
    skips without torchvision, which SAM 2's processors need."""
    pytest.importorskip("torchvision")
    from c2f_testing import save_tiny_sam2

    return ModelSources(image=str(tiny_model), sam2=str(save_tiny_sam2(tmp_path_factory.mktemp("tiny_sam2"))))


@pytest.fixture(scope="session")
def image_tab(sources) -> ImageTab:
    return ImageTab(sources)


@pytest.fixture(scope="session")
def sam_image_tab(sam_sources) -> ImageTab:
    return ImageTab(sam_sources)


@pytest.fixture(scope="session")
def video_tab(sources) -> VideoTab:
    return VideoTab(sources)


@pytest.fixture(scope="session")
def sam2_video_tab(sam2_sources) -> VideoTab:
    return VideoTab(sam2_sources)


@pytest.fixture(scope="session")
def demo(sources):
    """The page of the default Space on the tiny image model."""
    return build_demo(sources)


def launched(demo) -> str:
    """Launch `demo` on 127.0.0.1 at a free port, as the Space launches it; returns its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, url, _ = launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return url


@pytest.fixture(scope="session")
def server(demo):
    url = launched(demo)
    yield url
    demo.close()


@pytest.fixture(scope="session")
def sam_server(sam_sources):
    sam_demo = build_demo(sam_sources)
    url = launched(sam_demo)
    yield url
    sam_demo.close()


@pytest.fixture(scope="session")
def sam2_server(sam2_sources):
    sam2_demo = build_demo(sam2_sources)
    url = launched(sam2_demo)
    yield url
    sam2_demo.close()
