import math

import pytest
import torch

from c2f_hf.models.c2f_seg.maskgit import (
    MaskGITSampler,
    cosine_mask_ratio,
    draw_training_mask,
    gumbel_noise,
    keep_top_k_logits,
    object_generators,
    object_seed,
    sample_from_probabilities,
)

MASK = 8


def test_cosine_schedule_end_points():
    assert cosine_mask_ratio(0.0) == 1.0
    assert cosine_mask_ratio(1.0) == pytest.approx(0.0, abs=1e-12)
    assert cosine_mask_ratio(1 / 3) == pytest.approx(math.cos(math.pi / 6))


def test_keep_top_k_logits_keeps_exactly_k_per_row():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 5.0]])
    kept = keep_top_k_logits(logits, 3)
    assert torch.isfinite(kept).sum().item() == 3
    assert torch.equal(torch.isfinite(kept), torch.tensor([[False, True, True, False, True]]))


def test_training_mask_masks_at_least_the_minimum_ratio_in_every_row():
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        mask = draw_training_mask(4, 64, 0.5, torch.device("cpu"), generator)
        counts = mask.sum(dim=1)
        assert torch.all(counts == counts[0])
        assert counts[0] >= 32


def test_training_mask_is_reproducible_with_a_seed():
    first = draw_training_mask(2, 16, 0.5, torch.device("cpu"), torch.Generator().manual_seed(7))
    second = draw_training_mask(2, 16, 0.5, torch.device("cpu"), torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


def fixed_logits(batch: int, cells: int, seed: int = 0):
    table = torch.randn(batch, cells, MASK + 1, generator=torch.Generator().manual_seed(seed))

    def logits_fn(tokens: torch.Tensor) -> torch.Tensor:
        return table

    return table, logits_fn


def test_greedy_sampling_returns_the_argmax_of_the_unmasked_classes():
    table, logits_fn = fixed_logits(2, 16)
    result = MaskGITSampler(num_steps=3, top_k=3).sample(logits_fn, torch.full((2, 16), MASK), MASK, greedy=True)
    assert torch.equal(result.tokens, table[..., :MASK].argmax(dim=-1))
    assert torch.all(result.tokens < MASK)


def test_sampling_only_draws_from_the_top_k_codes():
    table, logits_fn = fixed_logits(2, 16)
    top3 = table[..., :MASK].topk(3, dim=-1).indices
    result = MaskGITSampler(num_steps=3, top_k=3).sample(
        logits_fn, torch.full((2, 16), MASK), MASK, generator=torch.Generator().manual_seed(0)
    )
    assert torch.all((result.tokens.unsqueeze(-1) == top3).any(dim=-1))


def test_cells_fixed_in_an_earlier_step_keep_their_code():
    calls = []

    def logits_fn(tokens: torch.Tensor) -> torch.Tensor:
        calls.append(tokens.clone())
        return torch.randn(1, 16, MASK + 1, generator=torch.Generator().manual_seed(len(calls)))

    result = MaskGITSampler(num_steps=3).sample(
        logits_fn, torch.full((1, 16), MASK), MASK, generator=torch.Generator().manual_seed(1)
    )
    assert len(calls) == 3
    assert torch.all(calls[0] == MASK)
    for earlier, later in zip(calls[1:], calls[2:]):
        fixed = earlier != MASK
        assert torch.equal(later[fixed], earlier[fixed])
    fixed_before_last = calls[-1] != MASK
    assert torch.equal(result.tokens[fixed_before_last], calls[-1][fixed_before_last])


def test_remask_counts_follow_the_cosine_schedule():
    calls = []

    def logits_fn(tokens: torch.Tensor) -> torch.Tensor:
        calls.append(int((tokens == MASK).sum()))
        return torch.randn(1, 256, MASK + 1, generator=torch.Generator().manual_seed(len(calls)))

    MaskGITSampler(num_steps=3).sample(
        logits_fn, torch.full((1, 256), MASK), MASK, generator=torch.Generator().manual_seed(2)
    )
    assert calls == [256, math.floor(256 * math.cos(math.pi / 6)), math.floor(256 * math.cos(math.pi / 3))]


def test_gumbel_noise_is_finite_and_has_the_gumbel_mean():

    noise = gumbel_noise(torch.Size([20000]), torch.device("cpu"), torch.Generator().manual_seed(0))
    assert torch.isfinite(noise).all()
    assert noise.mean().item() == pytest.approx(0.5772, abs=0.03)


def test_sampling_draws_the_same_codes_as_torch_multinomial():
    logits = torch.randn(4, 16, 17, generator=torch.Generator().manual_seed(0))
    probabilities = torch.softmax(logits, dim=-1)
    expected = torch.multinomial(probabilities.view(-1, 17), 1, generator=torch.Generator().manual_seed(5))
    drawn = sample_from_probabilities(probabilities, torch.Generator().manual_seed(5), greedy=False)
    assert torch.equal(drawn, expected.view(4, 16))


def test_object_seeds_are_distinct_and_fit_a_torch_seed():
    seeds = {object_seed(seed, key) for seed in range(4) for key in range(256)}
    assert len(seeds) == 4 * 256
    assert all(0 <= value < 2**63 for value in seeds)
    assert object_seed(0, 5) == object_seed(0, 5)


def test_one_generator_per_object_draws_each_objects_rows_from_its_own_stream():
    rows_per_object = 2
    noise = gumbel_noise((3 * rows_per_object, 5), torch.device("cpu"), object_generators(1, [10, 11, 12]))
    alone = gumbel_noise((rows_per_object, 5), torch.device("cpu"), object_generators(1, [11]))
    torch.testing.assert_close(noise[rows_per_object : 2 * rows_per_object], alone, rtol=0, atol=0)
    probabilities = torch.softmax(torch.randn(3, 4, 6), dim=-1)
    codes = sample_from_probabilities(probabilities, object_generators(2, [0, 1, 2]), greedy=False)
    alone_codes = sample_from_probabilities(probabilities[2:], object_generators(2, [2]), greedy=False)
    assert torch.equal(codes[2:], alone_codes)
