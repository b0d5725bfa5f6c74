"""Checks every C2F-Seg model class passes, in the spirit of transformers' `ModelTesterMixin`, with plain pytest
parametrisation: save/load round trip, tuple vs dict outputs, eager vs sdpa attention, batch equivalence and
weight initialisation. Each case builds a tiny model (the `micro` preset) and its inputs."""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
from torch import nn

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegMaskTransformer, C2FSegRefiner, C2FSegVQModel
from c2f_testing import TINY_IMAGE_SIZE, random_object_batch, tiny_config

BATCH = 3
NUM_FRAMES = 2
TOLERANCE = 1e-5


class ModelCase(NamedTuple):
    model_class: type
    config: Callable[[], object]
    inputs: Callable[[int], tuple]
    has_attention: bool
    has_linear_layers: bool


def video_config():
    config = tiny_config()
    transformer = dataclasses.replace(config.transformer_config, num_frames=NUM_FRAMES, spatial_window_size=2)
    return dataclasses.replace(config, transformer_config=transformer)


def mask_inputs(batch: int) -> tuple:
    return (random_object_batch(batch)[1],)


def transformer_inputs(batch: int) -> tuple:
    config = tiny_config().transformer_config
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(
        batch, config.image_feature_channels, config.grid_size, config.grid_size, generator=generator
    )
    visible = torch.randint(0, config.vocab_size, (batch, config.sequence_length), generator=generator)
    amodal = torch.randint(0, config.vocab_size + 1, (batch, config.sequence_length), generator=generator)
    return features, visible, amodal


def refiner_inputs(batch: int) -> tuple:
    generator = torch.Generator().manual_seed(2)
    widths = tiny_config().refiner_config.backbone_channels
    sides = [TINY_IMAGE_SIZE // stride for stride in (4, 8, 16, 16)]
    features = tuple(torch.randn(batch, width, side, side, generator=generator) for width, side in zip(widths, sides))
    coarse = torch.rand(batch, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=generator)
    return features, coarse


def composite_inputs(batch: int) -> tuple:
    pixel_values, visible, _ = random_object_batch(batch, seed=3)
    return pixel_values, visible


def video_inputs(batch: int) -> tuple:
    pixel_values, visible, _ = random_object_batch(batch * NUM_FRAMES, seed=4)
    clips = lambda tensor: tensor.view(batch, NUM_FRAMES, *tensor.shape[1:])  # noqa: E731
    return clips(pixel_values), clips(visible)


CASES = {
    "vq": ModelCase(C2FSegVQModel, lambda: tiny_config().vq_config, mask_inputs, False, False),
    "transformer": ModelCase(
        C2FSegMaskTransformer, lambda: tiny_config().transformer_config, transformer_inputs, True, True
    ),
    "refiner": ModelCase(C2FSegRefiner, lambda: tiny_config().refiner_config, refiner_inputs, False, False),
    "composite": ModelCase(C2FSegForAmodalSegmentation, tiny_config, composite_inputs, True, True),
    "composite_video": ModelCase(C2FSegForAmodalSegmentation, video_config, video_inputs, True, True),
}
ATTENTION_CASES = [name for name, case in CASES.items() if case.has_attention]
LINEAR_CASES = [name for name, case in CASES.items() if case.has_linear_layers]


def build(case: ModelCase, config=None, attn_implementation: str | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = case.model_class(case.config() if config is None else config).eval()
    if attn_implementation is not None:
        model.set_attn_implementation(attn_implementation)
    return model


def output_tensors(output) -> list[torch.Tensor]:
    return [value for value in output.to_tuple() if isinstance(value, torch.Tensor)]


def assert_outputs_close(first, second, atol: float = 0.0) -> None:
    first, second = output_tensors(first), output_tensors(second)
    assert len(first) == len(second) > 0
    for expected, actual in zip(first, second):
        torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


@pytest.mark.parametrize("name", CASES)
@torch.no_grad()
def test_save_load_round_trip_gives_the_same_outputs(tmp_path, name):
    case = CASES[name]
    model = build(case)
    inputs = case.inputs(BATCH)
    model.save_pretrained(tmp_path)
    reloaded = case.model_class.from_pretrained(tmp_path).eval()
    assert_outputs_close(model(*inputs), reloaded(*inputs))


@pytest.mark.parametrize("name", CASES)
@torch.no_grad()
def test_tuple_and_dict_outputs_agree(name):
    case = CASES[name]
    model = build(case)
    inputs = case.inputs(BATCH)
    as_dict = model(*inputs)
    as_tuple = model(*inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    expected = output_tensors(as_dict)
    assert len(as_tuple) == len(expected)
    for first, second in zip(expected, as_tuple):
        assert torch.equal(first, second)


@pytest.mark.parametrize("name", ATTENTION_CASES)
@torch.no_grad()
def test_eager_and_sdpa_attention_agree(name):
    case = CASES[name]
    eager, sdpa = build(case, attn_implementation="eager"), build(case, attn_implementation="sdpa")
    transformer = eager if isinstance(eager, C2FSegMaskTransformer) else eager.transformer
    assert transformer.config._attn_implementation == "eager"
    inputs = case.inputs(BATCH)
    assert_outputs_close(eager(*inputs), sdpa(*inputs), atol=TOLERANCE)


@pytest.mark.parametrize("name", CASES)
@torch.no_grad()
def test_each_item_alone_equals_its_row_in_a_batch(name):
    case = CASES[name]
    model = build(case)
    inputs = case.inputs(BATCH)
    batched = model(*inputs)

    def item(value, index):
        if isinstance(value, tuple):
            return tuple(part[index : index + 1] for part in value)
        return value[index : index + 1]

    for index in range(BATCH):
        single = model(*(item(value, index) for value in inputs))
        for name_, value in batched.items():
            if value.ndim == 0:
                continue  # batch means (the VQ codebook loss) are not per item
            torch.testing.assert_close(single[name_], value[index : index + 1], atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("name", LINEAR_CASES)
def test_init_respects_initializer_range_and_zeroes_biases(name):
    case = CASES[name]
    config = case.config()
    initializer_range = 0.1
    sub_configs = [getattr(config, key, None) for key in ("vq_config", "transformer_config", "refiner_config")]
    for part in [config, *sub_configs]:
        if part is not None:
            part.initializer_range = initializer_range
    model = build(case, config=config)
    linear = [module for module in model.modules() if isinstance(module, nn.Linear)]
    weights = torch.cat([module.weight.flatten() for module in linear])
    assert weights.std().item() == pytest.approx(initializer_range, rel=0.05)
    assert all(torch.all(module.bias == 0) for module in linear if module.bias is not None)
    transformer = model if isinstance(model, C2FSegMaskTransformer) else model.transformer
    assert torch.all(transformer.prediction_head.bias == 0)
    embedding = transformer.embeddings.position_embeddings.weight
    assert embedding.std().item() == pytest.approx(initializer_range, rel=0.15)


def test_codebook_is_uniform_in_plus_minus_one_over_its_size():
    model = build(CASES["vq"])
    codebook = model.quantize.embedding.weight
    size = codebook.shape[0]
    assert codebook.abs().max() <= 1.0 / size
    assert codebook.std() > 0.25 / size


@pytest.mark.parametrize(
    ("model_class", "attribute"),
    [(C2FSegVQModel, "vq_model"), (C2FSegMaskTransformer, "transformer"), (C2FSegRefiner, "refiner")],
)
def test_base_model_prefix_names_the_attribute_of_the_composite(tmp_path, model_class, attribute):
    """A sub-model's `base_model_prefix` is its attribute in the composite, so it loads out of a composite folder."""
    composite = build(CASES["composite"])
    assert model_class.base_model_prefix == attribute
    composite.save_pretrained(tmp_path)
    loaded = model_class.from_pretrained(tmp_path)
    expected = getattr(composite, attribute).state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(tensor, expected[key]) for key, tensor in loaded.state_dict().items())


def test_the_composite_is_its_own_base_model():
    assert build(CASES["composite"]).base_model_prefix == ""
