"""A saved folder is not trusted: config.json fields are checked at load time (finite, positive epsilons; sampling
steps bounded by the sequence length; block counts bounded by the weights file) and so is the weights header."""

import json
import math
import struct

import numpy as np
import pytest
import torch
from transformers import pipeline

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.saved_folder_checks import MAX_HEADER_BYTES
from c2f_testing import random_object_batch, save_tiny_model


@pytest.fixture
def folder(tmp_path):
    return save_tiny_model(tmp_path / "model")


def edit_config(folder, path: str, value) -> None:
    """Set `config.json`'s field at the dotted `path` to `value`."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    *parents, field = path.split(".")
    node = config
    for parent in parents:
        node = node[parent]
    node[field] = value
    config_path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "path",
    [
        "vq_config.norm_eps",
        "transformer_config.layer_norm_eps",
        "refiner_config.batch_norm_eps",
        "refiner_config.attention_eps",
    ],
)
@pytest.mark.parametrize("value", [-1e-5, 0.0, math.nan, math.inf])
def test_epsilons_that_are_not_finite_and_positive_are_refused_naming_the_field(folder, path, value):
    edit_config(folder, path, value)
    field = path.split(".")[1]
    with pytest.raises(ValueError, match=rf"(?s)config\.json: .*{field} must be a finite positive number"):
        C2FSegForAmodalSegmentation.from_pretrained(folder)


def test_num_sampling_steps_beyond_the_sequence_length_is_refused_at_load(folder):
    edit_config(folder, "num_sampling_steps", 10**9)
    with pytest.raises(ValueError, match=r"(?s)config\.json: .*num_sampling_steps \(1000000000\) must be at most"):
        C2FSegForAmodalSegmentation.from_pretrained(folder)


def test_num_steps_beyond_the_sequence_length_is_refused_per_call(folder, model):
    pixel_values, visible_masks = random_object_batch(1)[:2]
    length = model.config.transformer_config.sequence_length
    with pytest.raises(ValueError, match=rf"num_steps: expected at most {length} decoding steps"):
        model.generate(pixel_values, visible_masks, num_steps=length + 1)
    segmenter = pipeline("amodal-segmentation", model=str(folder), trust_remote_code=False)
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    with pytest.raises(ValueError, match=r"num_steps: expected at most"):
        segmenter(image, visible_masks=[mask], num_steps=10**9)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("transformer_config.num_hidden_layers", 10**6),
        ("vq_config.num_res_blocks", 10**6),
        ("backbone_config.depths", [1, 1, 10**6, 1]),
    ],
)
def test_a_config_asking_for_more_blocks_than_the_weights_hold_is_refused_before_building(folder, path, value):
    edit_config(folder, path, value)
    with pytest.raises(ValueError, match=rf"config\.json: {path} asks for 1000000 blocks but .*model\.safetensors"):
        C2FSegForAmodalSegmentation.from_pretrained(folder)


def test_a_huge_safetensors_header_is_refused_before_it_is_read(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(struct.pack("<Q", 2 << 30) + b"{}" + bytes(64))
    with pytest.raises(ValueError, match=rf"declares a {2 << 30}-byte header .*at most {MAX_HEADER_BYTES}"):
        C2FSegForAmodalSegmentation.from_pretrained(folder)


def test_the_checks_accept_a_valid_folder(folder):
    torch.manual_seed(0)
    assert isinstance(C2FSegForAmodalSegmentation.from_pretrained(folder), C2FSegForAmodalSegmentation)
