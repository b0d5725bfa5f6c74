"""The fast inference options (bf16, attention kernel, channels_last, torch.compile) against the fp32 eager
reference path, on the tiny model and on CPU.

Tolerances. bf16 keeps 8 significant bits (relative rounding 2**-9 ~ 2e-3 per op), and a greedy code can flip
when two top logits are within that; the nearest-code search and the sampler's softmax stay fp32. Measured on the
tiny model over 6 weight seeds, 8 objects each: refined amodal probabilities within 5.6e-4 of fp32, thresholded
masks agreeing on >= 99.95% of pixels, even though random weights put every probability near the 0.5 threshold
(the worst case for agreement). We assert 2e-3 (about 4x the largest measured) and 99%. fp32 variants (eager vs
sdpa attention, channels_last, compiled) only reorder fp32 sums: 1e-5. The Winograd convolutions of
`optimize_for_cpu(bf16=False)` deviate from the direct ones by about 1.6e-5 of their output's scale (measured at the
full-size model's shapes); the tiny model's predictions stay within 1e-5.
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from transformers import pipeline

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation, C2FSegVQConfig
from c2f_hf.models.c2f_seg.fast_inference import (
    VQ_CHUNK_BYTES,
    C2FSegWinogradConv2d,
    bf16_pays_off,
    cpu_has_native_bf16,
    use_winograd_convolutions,
    vq_objects_within,
)
from c2f_hf.models.c2f_seg.pipeline_amodal_segmentation import DEFAULT_OBJECTS_PER_BATCH
from c2f_hf.presets import model_config
from c2f_testing import random_object_batch, save_tiny_model

BF16_PROBABILITY_TOLERANCE = 2e-3
BF16_MIN_PIXEL_AGREEMENT = 0.99
FP32_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


def load(folder, **kwargs) -> C2FSegForAmodalSegmentation:
    """The reference (fp32, as saved) unless another `dtype` is asked for."""
    kwargs.setdefault("dtype", torch.float32)
    return C2FSegForAmodalSegmentation.from_pretrained(folder, **kwargs).eval()


@pytest.fixture(scope="module")
def reference(model_folder) -> C2FSegForAmodalSegmentation:
    return load(model_folder)


@pytest.fixture(scope="module")
def objects():
    pixel_values, visible_masks, _ = random_object_batch(8, seed=1)
    return pixel_values, visible_masks


def assert_same_fp32_prediction(expected, actual):
    assert torch.equal(expected.amodal_tokens, actual.amodal_tokens)
    for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks", "scores"):
        torch.testing.assert_close(
            getattr(actual, name), getattr(expected, name), atol=FP32_TOLERANCE, rtol=FP32_TOLERANCE
        )


def test_default_path_is_fp32_sdpa_and_unaffected_by_fast_siblings(model_folder, reference, objects):
    expected = reference.generate(*objects, greedy=True)
    fast = load(model_folder, dtype=torch.bfloat16, attn_implementation="eager")
    fast.to(memory_format=torch.channels_last).compile_for_inference(backend="eager")
    fast.generate(*objects, greedy=True)
    assert reference.dtype == torch.float32
    assert reference.config.transformer_config._attn_implementation == "sdpa"
    assert not reference._uses_cuda_graphs
    again = reference.generate(*objects, greedy=True)
    for name in expected.keys():
        assert torch.equal(getattr(expected, name), getattr(again, name)), name


class ForbidHostSyncs(TorchFunctionMode):
    """Fails on the tensor methods that copy a value to the host (and so wait for the device)."""

    forbidden = {
        torch.Tensor.item,
        torch.Tensor.tolist,
        torch.Tensor.__bool__,
        torch.Tensor.__int__,
        torch.Tensor.__float__,
        torch.Tensor.__index__,
        torch.Tensor.nonzero,
        torch.nonzero,
    }

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.forbidden:
            raise AssertionError(f"host sync inside the MaskGIT loop: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("greedy", [True, False])
def test_the_maskgit_loop_never_reads_tensor_values_on_the_host(reference, objects, greedy):
    pixel_values, visible_masks = objects
    image_features = reference.encode_image(pixel_values)
    visible_tokens = reference.encode_masks(visible_masks)
    with torch.no_grad(), ForbidHostSyncs():
        reference.sample_tokens(
            image_features, visible_tokens, generator=torch.Generator().manual_seed(0), greedy=greedy
        )


def test_bf16_model_matches_the_fp32_reference(model_folder, reference, objects):
    fast = load(model_folder, dtype=torch.bfloat16)
    assert {parameter.dtype for parameter in fast.parameters()} == {torch.bfloat16}
    expected = reference.generate(*objects, greedy=True)
    actual = fast.generate(*objects, greedy=True)
    for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks", "token_scores"):
        assert getattr(actual, name).dtype == torch.float32, name
    deviation = (actual.amodal_masks - expected.amodal_masks).abs().max()
    agreement = ((actual.amodal_masks > 0.5) == (expected.amodal_masks > 0.5)).float().mean()
    assert deviation <= BF16_PROBABILITY_TOLERANCE
    assert agreement >= BF16_MIN_PIXEL_AGREEMENT


def test_bf16_seeded_sampling_and_the_training_step_run(model_folder, objects):
    fast = load(model_folder, dtype=torch.bfloat16)
    output = fast.generate(*objects, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(output.amodal_masks).all() and torch.isfinite(output.scores).all()
    pixel_values, visible_masks = objects
    losses = fast(pixel_values, visible_masks, visible_masks, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(losses.loss)


def test_bf16_pipeline_agrees_with_the_fp32_pipeline(model_folder):
    image = torch.randint(0, 255, (90, 110, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    masks = [torch.zeros(90, 110, dtype=torch.bool) for _ in range(2)]
    masks[0][5:25, 5:35] = True
    masks[1][40:70, 50:70] = True
    inputs = (image.numpy(), [mask.numpy() for mask in masks])
    results = {
        dtype: pipeline("amodal-segmentation", model=str(model_folder), dtype=dtype, trust_remote_code=False)(
            inputs[0], visible_masks=inputs[1], greedy=True
        )
        for dtype in (torch.float32, torch.bfloat16)
    }
    for fp32_object, bf16_object in zip(results[torch.float32], results[torch.bfloat16]):
        fp32_mask, bf16_mask = (np.asarray(result["amodal_mask"]) for result in (fp32_object, bf16_object))
        assert (fp32_mask == bf16_mask).mean() >= BF16_MIN_PIXEL_AGREEMENT


def test_eager_and_sdpa_attention_agree(model_folder, objects):
    eager, sdpa = load(model_folder, attn_implementation="eager"), load(model_folder, attn_implementation="sdpa")
    assert {layer.attention.config._attn_implementation for layer in eager.transformer.layers} == {"eager"}
    assert sdpa.transformer.config._attn_implementation == "sdpa"
    pixel_values, visible_masks = objects
    features, tokens = sdpa.encode_image(pixel_values), sdpa.encode_masks(visible_masks)
    torch.testing.assert_close(
        eager.token_logits(features, tokens, tokens),
        sdpa.token_logits(features, tokens, tokens),
        atol=FP32_TOLERANCE,
        rtol=0,
    )
    assert_same_fp32_prediction(sdpa.generate(*objects, greedy=True), eager.generate(*objects, greedy=True))


def test_set_attn_implementation_switches_the_kernel(model_folder, objects):
    model = load(model_folder)
    expected = model.generate(*objects, greedy=True)
    model.set_attn_implementation("eager")
    assert model.transformer.layers[0].attention.config._attn_implementation == "eager"
    assert_same_fp32_prediction(expected, model.generate(*objects, greedy=True))


def test_channels_last_gives_the_same_prediction(model_folder, reference, objects):
    model = load(model_folder).to(memory_format=torch.channels_last)
    pixel_values, visible_masks = objects
    features = model.encode_image(pixel_values)
    assert all(feature.is_contiguous(memory_format=torch.channels_last) for feature in features)
    assert_same_fp32_prediction(reference.generate(*objects, greedy=True), model.generate(*objects, greedy=True))


def test_optimize_for_cpu_keeps_fp32_on_request_and_predicts_the_same(model_folder, reference, objects):
    model = load(model_folder).optimize_for_cpu(bf16=False)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}
    assert model.vq_batch_size >= objects[0].shape[0]
    winograd_layers = [module for module in model.modules() if isinstance(module, C2FSegWinogradConv2d)]
    assert len(winograd_layers) == (
        sum(C2FSegWinogradConv2d.can_compute(module) for module in reference.modules())
        if torch._nnpack_available()
        else 0
    )
    assert model.state_dict().keys() == reference.state_dict().keys()
    assert_same_fp32_prediction(reference.generate(*objects, greedy=True), model.generate(*objects, greedy=True))


@pytest.mark.parametrize("dtype", [None, "auto"])
def test_from_pretrained_without_a_dtype_is_on_the_cpu_fast_path(model_folder, reference, objects, dtype):
    default = C2FSegForAmodalSegmentation.from_pretrained(model_folder, **({} if dtype is None else {"dtype": dtype}))
    expected = load(model_folder).optimize_for_cpu()
    uses_bf16 = cpu_has_native_bf16() and bf16_pays_off(default.config.vq_config)
    assert default.dtype == (torch.bfloat16 if uses_bf16 else torch.float32)
    assert default.vq_batch_size == expected.vq_batch_size is not None
    winograd_layers = lambda model: sum(isinstance(module, C2FSegWinogradConv2d) for module in model.modules())  # noqa: E731
    assert winograd_layers(default) == winograd_layers(expected)
    output, expected_output = default.generate(*objects, greedy=True), expected.generate(*objects, greedy=True)
    assert torch.equal(output.amodal_tokens, expected_output.amodal_tokens)
    torch.testing.assert_close(output.amodal_masks, expected_output.amodal_masks, rtol=0, atol=0)


def test_bf16_is_chosen_only_for_models_large_enough_to_gain_from_it():
    assert bf16_pays_off(model_config("tiny").vq_config) and bf16_pays_off(model_config("kins").vq_config)
    assert not bf16_pays_off(model_config("micro").vq_config)


def test_from_pretrained_with_fp32_is_the_reference_path(reference):
    assert reference.dtype == torch.float32 and reference.vq_batch_size is None
    assert not any(isinstance(module, C2FSegWinogradConv2d) for module in reference.modules())


def test_the_pipeline_takes_the_fast_path_by_default_and_the_reference_on_request(model_folder):
    default = pipeline("amodal-segmentation", model=str(model_folder))
    assert default.model.vq_batch_size is not None
    assert default._batch_size == DEFAULT_OBJECTS_PER_BATCH
    reference_pipeline = pipeline("amodal-segmentation", model=str(model_folder), dtype=torch.float32)
    assert reference_pipeline.model.vq_batch_size is None and reference_pipeline.model.dtype == torch.float32
    assert pipeline("amodal-segmentation", model=str(model_folder), batch_size=2)._batch_size == 2


def test_optimized_fp32_model_saves_the_same_checkpoint(model_folder, reference, tmp_path):
    load(model_folder).optimize_for_cpu(bf16=False).save_pretrained(tmp_path)
    reloaded = load(tmp_path)
    assert not any(isinstance(module, C2FSegWinogradConv2d) for module in reloaded.modules())
    for name, tensor in reference.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


@pytest.mark.skipif(not torch._nnpack_available(), reason="this torch build has no NNPACK")
@pytest.mark.parametrize("batch_size", [1, 3])
def test_winograd_convolution_matches_the_direct_one(batch_size):
    torch.manual_seed(0)
    direct = nn.Conv2d(64, 64, kernel_size=3, padding=1)
    winograd = C2FSegWinogradConv2d(64, 64, kernel_size=3, padding=1)
    winograd.load_state_dict(direct.state_dict())
    inputs = torch.randn(batch_size, 64, 64, 64)
    with torch.no_grad():
        expected, actual = direct(inputs), winograd(inputs)
        assert winograd.uses_winograd(inputs)
    assert not torch.equal(actual, expected)
    torch.testing.assert_close(actual, expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


def test_winograd_convolution_is_the_direct_one_on_small_maps_few_channels_and_with_autograd():
    torch.manual_seed(0)
    direct = nn.Conv2d(64, 64, kernel_size=3, padding=1)
    winograd = C2FSegWinogradConv2d(64, 64, kernel_size=3, padding=1)
    winograd.load_state_dict(direct.state_dict())
    few_channels = C2FSegWinogradConv2d(8, 8, kernel_size=3, padding=1)
    with torch.no_grad():
        small = torch.randn(2, 64, 16, 16)
        assert not winograd.uses_winograd(small)
        assert torch.equal(winograd(small), direct(small))
        assert not few_channels.uses_winograd(torch.randn(1, 8, 256, 256))
    large = torch.randn(1, 64, 64, 64, requires_grad=True)
    assert not winograd.uses_winograd(large)
    winograd(large).sum().backward()
    assert large.grad is not None and winograd.weight.grad is not None


def test_optimize_for_cpu_runs_the_full_size_vq_model_one_object_at_a_time():
    assert vq_objects_within(C2FSegConfig().vq_config, VQ_CHUNK_BYTES) == 1
    assert vq_objects_within(C2FSegConfig().vq_config, VQ_CHUNK_BYTES, torch.bfloat16) == 1
    small = C2FSegVQConfig(base_channels=8, norm_num_groups=8, resolution=128)
    assert vq_objects_within(small, VQ_CHUNK_BYTES) == 63
    assert vq_objects_within(small, VQ_CHUNK_BYTES, torch.bfloat16) == 127


def test_only_plain_3x3_stride_1_convolutions_become_winograd():
    layers = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, stride=2),
        nn.Conv2d(4, 4, 1),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2),
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
    )
    converted = use_winograd_convolutions(layers)
    assert converted == (1 if torch._nnpack_available() else 0)
    assert [isinstance(layer, C2FSegWinogradConv2d) for layer in layers] == [converted == 1] + [False] * 5


def test_vq_batches_give_the_same_codes_and_masks(model_folder, reference, objects):
    chunked = load(model_folder)
    chunked.vq_batch_size = 3
    _, visible_masks = objects
    tokens = reference.encode_masks(visible_masks)
    assert torch.equal(chunked.encode_masks(visible_masks), tokens)
    torch.testing.assert_close(
        chunked.decode_tokens(tokens), reference.decode_tokens(tokens), atol=FP32_TOLERANCE, rtol=FP32_TOLERANCE
    )


def test_optimize_for_cpu_in_bf16_agrees_with_the_fp32_reference(model_folder, reference, objects):
    model = load(model_folder).optimize_for_cpu(bf16=True)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}
    assert model.vq_batch_size == vq_objects_within(model.config.vq_config, VQ_CHUNK_BYTES, torch.bfloat16)
    expected = reference.generate(*objects, greedy=True)
    actual = model.generate(*objects, greedy=True)
    assert actual.amodal_masks.dtype == torch.float32
    agreement = ((actual.amodal_masks > 0.5) == (expected.amodal_masks > 0.5)).float().mean()
    assert agreement >= BF16_MIN_PIXEL_AGREEMENT


def test_optimize_for_cpu_chooses_bf16_only_where_the_cpu_has_it(model_folder):
    model = load(model_folder).optimize_for_cpu()
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert cpu_has_native_bf16() == native
    chooses_bf16 = native and bf16_pays_off(model.config.vq_config)
    assert model.dtype == (torch.bfloat16 if chooses_bf16 else torch.float32)


def test_compiled_model_gives_the_same_tokens(model_folder, reference, objects):
    # aot_eager traces the same whole graphs (fullgraph=True) as inductor; inductor's C++ codegen takes about two
    # minutes for the tiny model on 2 cores, too long for this suite (benchmarks/inference.py --modes compiled runs it).
    compiled = load(model_folder).compile_for_inference(backend="aot_eager")
    assert_same_fp32_prediction(reference.generate(*objects, greedy=True), compiled.generate(*objects, greedy=True))
    seeded = {
        name: model.generate(*objects, generator=torch.Generator().manual_seed(3))
        for name, model in (("reference", reference), ("compiled", compiled))
    }
    assert torch.equal(seeded["reference"].amodal_tokens, seeded["compiled"].amodal_tokens)


def test_cuda_graph_modes_mark_each_generate_call(model_folder, objects, monkeypatch):
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    model = load(model_folder).compile_for_inference(mode="reduce-overhead", backend="eager")
    assert model._uses_cuda_graphs
    model.generate(*objects, greedy=True)
    model.generate(*objects, greedy=True)
    assert len(marks) == 2
