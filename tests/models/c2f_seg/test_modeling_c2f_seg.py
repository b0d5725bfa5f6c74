import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from c2f_hf import (
    C2FSegForAmodalSegmentation,
    C2FSegMaskTransformer,
    C2FSegRefiner,
    C2FSegVQModel,
)
from c2f_hf.hub.export import marked_for_remote_code
from c2f_hf.models.c2f_seg.maskgit import object_generators
from c2f_hf.models.c2f_seg.modeling_c2f_seg import C2FSegVQResnetBlock, swish_
from c2f_testing import TINY_IMAGE_SIZE, random_object_batch, run_without_package, tiny_config

GRID = 4
VOCAB = 16


def test_backbone_gives_four_maps_with_a_stride_one_last_stage(model):
    pixel_values, _, _ = random_object_batch(2)
    features = model.encode_image(pixel_values)
    assert [tuple(f.shape) for f in features] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 24, 4, 4), (2, 32, 4, 4)]


def test_full_size_backbone_matches_torchvision_resnet50_geometry():
    config = tiny_config().backbone_config.__class__()
    with torch.device("meta"):
        full = C2FSegForAmodalSegmentation(__import__("c2f_hf").C2FSegConfig())
        features = full.encode_image(torch.empty(1, 3, 256, 256))
    assert [tuple(f.shape) for f in features] == [
        (1, 256, 64, 64),
        (1, 512, 32, 32),
        (1, 1024, 16, 16),
        (1, 2048, 16, 16),
    ]
    resnet50_without_fc = 25_557_032 - (2048 * 1000 + 1000)
    assert sum(p.numel() for p in full.backbone.parameters()) == resnet50_without_fc
    assert config.layer_type == "bottleneck"


def test_vq_model_stage_shapes(model):
    _, visible, _ = random_object_batch(2)
    encoded = model.vq_model.encode(visible)
    assert encoded.latents.shape == (2, 8, GRID, GRID)
    assert encoded.indices.shape == (2, GRID * GRID)
    assert encoded.indices.dtype == torch.long
    coarse = model.vq_model.decode_indices(encoded.indices)
    assert coarse.shape == (2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert coarse.min() >= 0 and coarse.max() <= 1
    output = model.vq_model(visible)
    assert output.reconstruction.shape == (2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert output.codebook_loss.ndim == 0
    assert torch.equal(output.indices, encoded.indices)


def test_vq_codes_are_the_nearest_codebook_entries(model):
    _, visible, _ = random_object_batch(1)
    encoded = model.vq_model.encode(visible)
    latents = encoded.latents.permute(0, 2, 3, 1).reshape(-1, 8)
    distances = torch.cdist(latents, model.vq_model.quantize.embedding.weight)
    assert torch.equal(distances.argmin(dim=1), encoded.indices.reshape(-1))


def out_of_place_resnet_block(block: C2FSegVQResnetBlock, inputs: torch.Tensor) -> torch.Tensor:
    """The residual block written with fresh tensors only (no in-place swish or residual add)."""
    hidden = block.conv1(F.silu(block.norm1(inputs)))
    hidden = block.conv2(F.silu(block.norm2(hidden)))
    return block.conv_shortcut(inputs) + hidden


@pytest.mark.parametrize("grad", [False, True])
def test_vq_resnet_block_in_place_ops_keep_its_input_and_its_gradients(grad):
    torch.manual_seed(0)
    block = C2FSegVQResnetBlock(tiny_config().vq_config, 8, 16).requires_grad_(grad)
    inputs = torch.randn(2, 8, 16, 16, requires_grad=grad)
    untouched = inputs.detach().clone()
    with torch.set_grad_enabled(grad):
        actual = block(inputs)
        expected = out_of_place_resnet_block(block, inputs)
    assert torch.equal(inputs.detach(), untouched)
    torch.testing.assert_close(actual, expected, atol=0, rtol=0)
    if grad:
        weights = torch.randn_like(actual)
        actual_grads = torch.autograd.grad((actual * weights).sum(), [inputs, block.conv1.weight])
        expected_grads = torch.autograd.grad((expected * weights).sum(), [inputs, block.conv1.weight])
        for got, want in zip(actual_grads, expected_grads):
            torch.testing.assert_close(got, want)


def test_swish_writes_over_its_argument_only_where_autograd_does_not_need_it():
    values = torch.randn(3, 4)
    expected = F.silu(values)
    with torch.no_grad():
        assert swish_(values) is values
    torch.testing.assert_close(values, expected, atol=0, rtol=0)
    leaf = torch.randn(3, 4, requires_grad=True)
    result = swish_(leaf)
    assert result is not leaf
    result.sum().backward()
    assert leaf.grad is not None


def test_transformer_and_refiner_shapes(model):
    pixel_values, visible, _ = random_object_batch(2)
    features = model.encode_image(pixel_values)
    tokens = model.encode_masks(visible)
    logits = model.token_logits(features, tokens, torch.full_like(tokens, VOCAB))
    assert logits.shape == (2, GRID * GRID, VOCAB + 1)
    refined = model.refine(features, visible)
    assert refined.visible_logits.shape == (2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert refined.amodal_logits.shape == (2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)


def test_generate_outputs(model):
    pixel_values, visible, _ = random_object_batch(3)
    output = model.generate(pixel_values, visible, generator=torch.Generator().manual_seed(0))
    for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks"):
        mask = getattr(output, name)
        assert mask.shape == (3, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
        assert mask.min() >= 0 and mask.max() <= 1
    assert output.amodal_tokens.shape == (3, GRID * GRID)
    assert torch.all(output.amodal_tokens < VOCAB)
    assert output.scores.shape == (3,)
    assert torch.all((output.scores > 0) & (output.scores <= 1))


def test_amodal_output_picks_the_refined_or_the_coarse_mask(model):
    pixel_values, visible, _ = random_object_batch(2)
    refined = model.generate(pixel_values, visible, greedy=True)
    assert model.config.amodal_output == "refined"
    try:
        model.config.amodal_output = "coarse"
        coarse = model.generate(pixel_values, visible, greedy=True)
        model.config.amodal_output = "both"
        with pytest.raises(ValueError, match="amodal_output must be one of"):
            model.generate(pixel_values, visible, greedy=True)
    finally:
        model.config.amodal_output = "refined"
    torch.testing.assert_close(coarse.amodal_masks, coarse.coarse_amodal_masks)
    torch.testing.assert_close(coarse.coarse_amodal_masks, refined.coarse_amodal_masks)
    assert not torch.equal(refined.amodal_masks, refined.coarse_amodal_masks)


def test_refined_where_visible_takes_the_coarse_mask_only_for_a_crop_with_an_empty_visible_mask(model):
    pixel_values, visible, _ = random_object_batch(3)
    visible[1] = 0.0  # the object is fully hidden in this crop
    refined = model.generate(pixel_values, visible, greedy=True)
    try:
        model.config.amodal_output = "refined_where_visible"
        mixed = model.generate(pixel_values, visible, greedy=True)
    finally:
        model.config.amodal_output = "refined"
    torch.testing.assert_close(mixed.amodal_masks[1], refined.coarse_amodal_masks[1])
    torch.testing.assert_close(mixed.amodal_masks[[0, 2]], refined.amodal_masks[[0, 2]])
    assert not torch.equal(refined.amodal_masks[1], refined.coarse_amodal_masks[1])


def test_a_config_with_an_unknown_amodal_output_is_refused():
    with pytest.raises(
        Exception, match=r"amodal_output must be one of \('refined', 'coarse', 'refined_where_visible'\), got 'blend'"
    ):
        tiny_config(amodal_output="blend")


def test_seeded_generation_is_reproducible_and_seeds_differ(model):
    pixel_values, visible, _ = random_object_batch(4)
    run = lambda seed: model.generate(pixel_values, visible, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    first, again, other = run(1), run(1), run(2)
    assert torch.equal(first.amodal_tokens, again.amodal_tokens)
    assert torch.equal(first.amodal_masks, again.amodal_masks)
    assert not torch.equal(first.amodal_tokens, other.amodal_tokens)


def test_per_object_generators_make_sampled_masks_independent_of_batching(model):
    pixel_values, visible, _ = random_object_batch(4)
    together = model.generate(pixel_values, visible, generator=object_generators(7, range(4)))
    apart = [
        model.generate(
            pixel_values[index : index + 1], visible[index : index + 1], generator=object_generators(7, [index])
        )
        for index in (3, 1, 0, 2)
    ]
    for output, index in zip(apart, (3, 1, 0, 2)):
        assert torch.equal(output.amodal_tokens[0], together.amodal_tokens[index])
        torch.testing.assert_close(output.amodal_masks[0], together.amodal_masks[index], rtol=0, atol=1e-6)
    other_seed = model.generate(pixel_values, visible, generator=object_generators(8, range(4)))
    assert not torch.equal(other_seed.amodal_tokens, together.amodal_tokens)


def test_a_generator_list_must_hold_one_generator_per_object(model):
    pixel_values, visible, _ = random_object_batch(3)
    with pytest.raises(ValueError, match=r"generator: expected one torch.Generator per object \(3\), got 2"):
        model.generate(pixel_values, visible, generator=object_generators(0, range(2)))
    with pytest.raises(ValueError, match="generator: expected None, a torch.Generator or a list"):
        model.generate(pixel_values, visible, generator=[0, 1, 2])


@pytest.fixture
def model_with_a_larger_vocabulary():
    """Twice as many transformer codes as codebook entries, the extra ones made the likeliest by far."""
    config = tiny_config()
    config.transformer_config.vocab_size = 2 * VOCAB
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(config).eval()
    with torch.no_grad():
        model.transformer.prediction_head.bias[VOCAB : 2 * VOCAB] = 100.0
    return model


def test_codes_missing_from_the_codebook_are_never_sampled(model_with_a_larger_vocabulary):
    model = model_with_a_larger_vocabulary
    pixel_values, visible, amodal = random_object_batch(3)
    for greedy in (False, True):
        output = model.generate(pixel_values, visible, generator=torch.Generator().manual_seed(0), greedy=greedy)
        assert output.amodal_tokens.max() < VOCAB
        assert torch.isfinite(output.amodal_masks).all()
    training = model.train()(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(training.loss)


def test_decodable_logits_only_hide_the_codes_the_codebook_lacks(model_with_a_larger_vocabulary):
    logits = torch.randn(2, GRID * GRID, 2 * VOCAB + 1)
    decodable = model_with_a_larger_vocabulary.decodable_logits(logits)
    assert torch.equal(decodable[..., :VOCAB], logits[..., :VOCAB])
    assert torch.equal(decodable[..., -1], logits[..., -1])
    assert torch.all(decodable[..., VOCAB : 2 * VOCAB] == float("-inf"))


def test_greedy_generation_is_deterministic(model):
    pixel_values, visible, _ = random_object_batch(2)
    torch.manual_seed(0)
    first = model.generate(pixel_values, visible, greedy=True)
    torch.manual_seed(1)
    second = model.generate(pixel_values, visible, greedy=True)
    assert torch.equal(first.amodal_tokens, second.amodal_tokens)
    assert torch.equal(first.amodal_masks, second.amodal_masks)


def test_a_batch_equals_single_calls_in_greedy_mode(model):
    pixel_values, visible, _ = random_object_batch(3)
    batched = model.generate(pixel_values, visible, greedy=True)
    for index in range(3):
        single = model.generate(pixel_values[index : index + 1], visible[index : index + 1], greedy=True)
        assert torch.equal(single.amodal_tokens[0], batched.amodal_tokens[index])
        torch.testing.assert_close(single.amodal_masks[0], batched.amodal_masks[index], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(single.scores[0], batched.scores[index], atol=1e-5, rtol=1e-5)


def test_num_steps_overrides_the_config(model):
    pixel_values, visible, _ = random_object_batch(1)
    calls = []
    original = model.transformer.forward

    def counting_forward(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.transformer.forward = counting_forward
    model.generate(pixel_values, visible, greedy=True)
    model.generate(pixel_values, visible, num_steps=5, greedy=True)
    assert len(calls) == 3 + 5


def test_decoding_projects_the_image_features_once_for_all_steps(model):
    pixel_values, visible, _ = random_object_batch(2)
    projections = []
    handle = model.transformer.embeddings.image_projection.register_forward_hook(
        lambda module, inputs, output: projections.append(output.shape)
    )
    try:
        model.generate(pixel_values, visible, num_steps=3, greedy=True)
    finally:
        handle.remove()
    assert len(projections) == 1


def test_precomputed_image_embeddings_give_the_same_logits(model):
    pixel_values, visible, _ = random_object_batch(2)
    features = model.encode_image(pixel_values)[-1]
    tokens = model.encode_masks(visible)
    amodal = torch.full_like(tokens, VOCAB)
    direct = model.transformer(features, tokens, amodal).logits
    embeddings = model.transformer.embeddings.project_image(features)
    reused = model.transformer(None, tokens, amodal, image_embeddings=embeddings).logits
    assert torch.equal(direct, reused)
    with pytest.raises(ValueError, match="image_features or image_embeddings"):
        model.transformer(None, tokens, amodal)


def test_a_min_mask_ratio_of_one_masks_every_training_cell():
    model = C2FSegForAmodalSegmentation(tiny_config(min_mask_ratio=1.0)).train()
    pixel_values, visible, amodal = random_object_batch(2)
    for seed in range(3):
        output = model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(seed))
        assert output.token_mask.all()


def test_training_forward_returns_stage_two_losses_and_gradients_skip_the_vq_model(model):
    pixel_values, visible, amodal = random_object_batch(2)
    model.train()
    output = model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0))
    assert output.loss.ndim == 0
    torch.testing.assert_close(output.loss, output.token_loss + output.refine_loss)
    assert output.token_mask.shape == (2, GRID * GRID)
    assert output.token_mask.sum(dim=1).min() >= GRID * GRID // 2
    output.loss.backward()
    assert all(p.grad is None for p in model.vq_model.parameters())
    for part in (model.backbone, model.transformer, model.refiner):
        assert all(p.grad is not None for p in part.parameters())
        assert any(p.grad.abs().sum() > 0 for p in part.parameters())


def test_token_loss_is_label_smoothed_cross_entropy(model):
    pixel_values, visible, amodal = random_object_batch(2)
    output = model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0))
    targets = model.encode_masks(amodal)
    log_probs = torch.log_softmax(output.token_logits, dim=-1)
    smooth = torch.full_like(log_probs, 0.1 / (VOCAB + 1))
    smooth.scatter_add_(-1, targets.unsqueeze(-1), torch.full_like(targets, 0.9, dtype=smooth.dtype).unsqueeze(-1))
    expected = -(smooth * log_probs).sum(dim=-1).mean()
    torch.testing.assert_close(output.token_loss, expected)


def test_forward_without_targets_has_no_loss(model):
    pixel_values, visible, _ = random_object_batch(2)
    output = model(pixel_values, visible)
    assert output.loss is None and output.token_mask is None
    assert output.amodal_logits.shape == (2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)


def assert_state_dicts_equal(first, second):
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for key in first_state:
        assert torch.equal(first_state[key], second_state[key]), key


@pytest.mark.parametrize("num_steps", [0, -1, True, 1.5])
def test_generate_refuses_a_num_steps_that_is_not_a_positive_integer(model, num_steps):
    pixel_values, visible, _ = random_object_batch(1)
    with pytest.raises(
        ValueError, match=f"num_steps: expected a positive integer number of decoding steps, got {num_steps}"
    ):
        model.generate(pixel_values, visible, num_steps=num_steps)


def rewrite_weights(folder, edit) -> None:
    """Apply `edit` to the state dict saved in `folder/model.safetensors`."""
    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda weights: weights.pop("refiner.amodal_branch.classifier.weight"), r"1 missing \(refiner.amodal_branch"),
        (lambda weights: weights.update(extra=torch.zeros(1)), r"1 unexpected \(extra\)"),
        (
            lambda weights: weights.update({"refiner.amodal_branch.classifier.bias": torch.zeros(7)}),
            "some are of another shape",
        ),
    ],
)
def test_loading_weights_that_do_not_match_is_an_error_unless_strict_is_off(tmp_path, model, edit, message):
    model.save_pretrained(tmp_path)
    rewrite_weights(tmp_path, edit)
    with pytest.raises(
        ValueError, match=f"{tmp_path}: the weights do not match C2FSegForAmodalSegmentation: {message}"
    ):
        C2FSegForAmodalSegmentation.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="Pass (strict=False|ignore_mismatched_sizes=True)"):
        AutoModel.from_pretrained(tmp_path)
    loaded, info = C2FSegForAmodalSegmentation.from_pretrained(
        tmp_path, strict=False, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert isinstance(loaded, C2FSegForAmodalSegmentation) and set(info) >= {"missing_keys", "unexpected_keys"}


def test_a_sub_model_loads_out_of_a_composite_folder_strictly(tmp_path, model):
    model.save_pretrained(tmp_path)
    vq_model = C2FSegVQModel.from_pretrained(tmp_path)
    assert_state_dicts_equal(model.vq_model, vq_model)


@pytest.mark.parametrize(
    ("model_class", "config_name"),
    [
        (C2FSegForAmodalSegmentation, None),
        (C2FSegVQModel, "vq_config"),
        (C2FSegMaskTransformer, "transformer_config"),
        (C2FSegRefiner, "refiner_config"),
    ],
)
def test_save_load_round_trip_is_bit_exact(tmp_path, model_class, config_name):
    config = tiny_config()
    torch.manual_seed(0)
    original = model_class(config if config_name is None else getattr(config, config_name)).eval()
    original.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = model_class.from_pretrained(tmp_path).eval()
    assert_state_dicts_equal(original, loaded)
    auto_loaded = AutoModel.from_pretrained(tmp_path)
    assert type(auto_loaded) is model_class


def test_reloaded_composite_predicts_identically(tmp_path, model):
    pixel_values, visible, _ = random_object_batch(2)
    model.save_pretrained(tmp_path)
    reloaded = C2FSegForAmodalSegmentation.from_pretrained(tmp_path).eval()
    first = model.generate(pixel_values, visible, greedy=True)
    second = reloaded.generate(pixel_values, visible, greedy=True)
    assert torch.equal(first.amodal_masks, second.amodal_masks)


def test_saved_folder_loads_with_remote_code_without_the_package(tmp_path, model):
    pixel_values, visible, _ = random_object_batch(2)
    with marked_for_remote_code():  # as `c2f-hf export` saves: plain folders name no remote code
        model.save_pretrained(tmp_path / "model")
    torch.save({"pixel_values": pixel_values, "visible": visible}, tmp_path / "inputs.pt")
    expected = model.generate(pixel_values, visible, greedy=True).amodal_masks
    script = textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        masks = model.generate(inputs["pixel_values"], inputs["visible"], greedy=True).amodal_masks
        torch.save(masks, {str(tmp_path / "masks.pt")!r})
        """
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "masks.pt"), expected, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_config()).train()
    pixel_values, visible, amodal = random_object_batch(2)

    def loss_and_gradients():
        model.zero_grad()
        torch.manual_seed(1)
        loss = model(pixel_values, visible, amodal, generator=torch.Generator().manual_seed(0)).loss
        loss.backward()
        return loss.detach(), [parameter.grad.clone() for parameter in model.transformer.parameters()]

    reference_loss, reference_gradients = loss_and_gradients()
    model.gradient_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.transformer.layers)
    loss, gradients = loss_and_gradients()
    torch.testing.assert_close(loss, reference_loss)
    for gradient, reference in zip(gradients, reference_gradients):
        torch.testing.assert_close(gradient, reference)
