"""The MaskGIT masking schedule and the K-step confidence-ordered token sampler.

This is the only place where the schedule lives: training draws its random token masks here and inference
runs `MaskGITSampler.sample`. The sampler knows nothing about the model; it is handed a function that maps the
current amodal tokens to logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


def check_num_steps(num_steps, max_steps: int | None = None) -> None:
    """Raise ValueError unless `num_steps` (the number of decoding steps K) is None or a positive int, at most
    `max_steps` (the token grid's sequence length: each step fixes at least one token) when given."""
    if num_steps is not None and (isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1):
        raise ValueError(f"num_steps: expected a positive integer number of decoding steps, got {num_steps!r}")
    if num_steps is not None and max_steps is not None and num_steps > max_steps:
        raise ValueError(
            f"num_steps: expected at most {max_steps} decoding steps (the model's sequence_length: each step fixes "
            f"at least one token), got {num_steps}"
        )


def cosine_mask_ratio(progress: float) -> float:
    """Fraction of tokens that stay masked after `progress` (in [0, 1]) of the decoding: cos(progress * pi / 2)."""
    return math.cos(progress * math.pi / 2)


def gumbel_noise(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples, drawn from `generator` (or the global RNG when it is None)."""
    uniform = torch.rand(shape, device=device, generator=generator)
    tiny = torch.finfo(uniform.dtype).tiny
    exponential = -torch.log(uniform.clamp_min(tiny))
    return -torch.log(exponential.clamp_min(tiny))


def keep_top_k_logits(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Set every logit below the k-th largest of its row to -inf. `logits (..., vocab)`."""
    kth_largest = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def draw_training_mask(
    batch_size: int,
    sequence_length: int,
    min_mask_ratio: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The stage-2 training mask: r = max(cos(pi/2 * u), min_mask_ratio) with u ~ U(0, 1) drawn once per batch,
    and floor(r * sequence_length) random cells masked in every row.

    Returns:
        `(batch_size, sequence_length)` bool, True where the amodal token is replaced by [MASK].
    """
    progress = torch.rand((), generator=generator, device=device).item()
    ratio = max(cosine_mask_ratio(progress), min_mask_ratio)
    num_masked = math.floor(ratio * sequence_length)
    scores = torch.rand((batch_size, sequence_length), device=device, generator=generator)
    masked_cells = scores.topk(num_masked, dim=1).indices
    mask = torch.zeros((batch_size, sequence_length), dtype=torch.bool, device=device)
    return mask.scatter_(1, masked_cells, True)


def sample_from_probabilities(
    probabilities: torch.Tensor, generator: torch.Generator | None, greedy: bool
) -> torch.Tensor:
    """One code per cell. `probabilities (batch, cells, vocab)` -> `(batch, cells)` long.

    Sampling is the exponential race argmax(p / q), q ~ Exp(1), which draws each code with probability p. On the
    CPU it is what `torch.multinomial` does for one sample and draws the same codes from `generator`; on CUDA
    multinomial draws differently, so seeded GPU samples differ from multinomial's (each is reproducible). It has
    none of multinomial's input checks, which wait for the device on older torch versions. No host sync, so the
    MaskGIT loop can run ahead.
    """
    if greedy:
        return probabilities.argmax(dim=-1)
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    race = torch.empty_like(flat).exponential_(1.0, generator=generator)
    return (flat / race).argmax(dim=-1).view(probabilities.shape[:-1])


@dataclass(frozen=True)
class SamplingResult:
    """Outcome of MaskGIT decoding.

    Attributes:
        tokens: `(batch, cells)` long, the last sampled code of every cell.
        token_scores: `(batch, cells)` float, the probability of each cell's code when it was last sampled.
    """

    tokens: torch.Tensor
    token_scores: torch.Tensor


@dataclass(frozen=True)
class MaskGITSampler:
    """K-step confidence-ordered decoding of an all-[MASK] token grid (the authors' `batch_predict_maskgit`).

    At step t the logits are cut to the `top_k` largest per cell, a code is sampled per cell (cells fixed
    earlier keep theirs), and the least confident floor(cells * cos(pi/2 * (t+1)/K)) cells, at least one and at most
    all-but-one of the unknown ones, go back to [MASK]. Confidence is log p(code) plus
    `choice_temperature * (1 - (t+1)/K)` Gumbel noise; fixed cells have infinite confidence. Greedy mode takes
    the argmax and adds no noise, so it is deterministic.
    """

    num_steps: int = 3
    top_k: int = 3
    choice_temperature: float = 4.5

    def __post_init__(self):
        check_num_steps(self.num_steps)

    def sample(
        self,
        logits_fn: Callable[[torch.Tensor], torch.Tensor],
        initial_tokens: torch.Tensor,
        mask_token_id: int,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> SamplingResult:
        """Run the decoding.

        Args:
            logits_fn: maps tokens `(batch, cells)` to logits `(batch, cells, vocab + 1)`; the last column is
                [MASK] and is never sampled.
            initial_tokens: `(batch, cells)` long, usually all `mask_token_id`.
            mask_token_id: the [MASK] index.
            generator: RNG of the sampling and the Gumbel noise; None uses the global RNG.
            greedy: argmax codes and no noise.
        """
        current = initial_tokens
        unknown_at_start = (current == mask_token_id).sum(dim=-1, keepdim=True)
        scores = torch.zeros(current.shape, dtype=torch.float32, device=current.device)
        sampled = current
        for step in range(self.num_steps):
            logits = logits_fn(current)[..., :mask_token_id].float()
            probabilities = torch.softmax(keep_top_k_logits(logits, self.top_k), dim=-1)
            unknown = current == mask_token_id
            sampled = torch.where(unknown, sample_from_probabilities(probabilities, generator, greedy), current)
            selected = probabilities.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
            scores = torch.where(unknown, selected, scores)
            progress = (step + 1) / self.num_steps
            num_to_mask = self._num_to_mask(unknown_at_start, unknown, progress)
            confidence = self._confidence(selected, unknown, progress, generator, greedy)
            current = torch.where(self._least_confident(confidence, num_to_mask), mask_token_id, sampled)
        return SamplingResult(tokens=sampled, token_scores=scores)

    @staticmethod
    def _num_to_mask(unknown_at_start: torch.Tensor, unknown: torch.Tensor, progress: float) -> torch.Tensor:
        target = torch.floor(unknown_at_start * cosine_mask_ratio(progress))
        still_unknown = unknown.sum(dim=-1, keepdim=True)
        return torch.clamp(torch.minimum(still_unknown - 1, target), min=1).long()

    def _confidence(
        self,
        selected: torch.Tensor,
        unknown: torch.Tensor,
        progress: float,
        generator: torch.Generator | None,
        greedy: bool,
    ) -> torch.Tensor:
        confidence = torch.log(selected)
        if not greedy:
            temperature = self.choice_temperature * (1.0 - progress)
            confidence = confidence + temperature * gumbel_noise(selected.shape, selected.device, generator)
        return confidence.masked_fill(~unknown, float("inf"))

    @staticmethod
    def _least_confident(confidence: torch.Tensor, num_to_mask: torch.Tensor) -> torch.Tensor:
        """True for the `num_to_mask` least confident cells of each row: those strictly below the confidence at
        sorted position `num_to_mask` (ties at the cut-off stay unmasked, as in the authors' code)."""
        cut_off = confidence.sort(dim=-1).values.gather(-1, num_to_mask)
        return confidence < cut_off


__all__ = [
    "MaskGITSampler",
    "SamplingResult",
    "cosine_mask_ratio",
    "draw_training_mask",
    "keep_top_k_logits",
]
