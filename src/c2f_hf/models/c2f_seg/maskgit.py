"""The MaskGIT masking schedule and the K-step confidence-ordered token sampler.

This is the only place where the schedule lives: training draws its random token masks here and inference
runs `MaskGITSampler.sample`. The sampler knows nothing about the model; it is handed a function that maps the
current amodal tokens to logits.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

RandomSource = torch.Generator | Sequence[torch.Generator] | None
"""Where sampling noise comes from: the global RNG (None), one generator for the whole batch, or one generator per
object (its rows of the batch: one row for an image object, T rows for a clip), which makes each object's draws
independent of how objects are batched."""

_MASK_64 = (1 << 64) - 1


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


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK_64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK_64
    return value ^ (value >> 31)


def object_seed(seed: int, key: int) -> int:
    """The seed of object `key`'s own random stream in a run seeded with `seed`: splitmix64 of the pair, so nearby
    seeds and keys give unrelated streams. A non-negative int below 2**63 (`torch.Generator.manual_seed`'s range)."""
    return _splitmix64(_splitmix64(seed & _MASK_64) ^ (key & _MASK_64)) >> 1


def object_generators(
    seed: int, object_keys: Sequence[int], device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per object, seeded with `object_seed(seed, key)`. Give `generate` these, keyed by something
    fixed for the object (its index in the image, in the dataset), and its sampled masks no longer depend on which
    objects share its batch or on the batch size."""
    return [torch.Generator(device=device).manual_seed(object_seed(seed, int(key))) for key in object_keys]


def mask_key(mask: np.ndarray) -> int:
    """A key of an object for `object_generators` taken from its `(H, W)` (or `(F, H, W)`) bool visible mask: the
    CRC-32 of its shape and packed pixels. An object keyed by its mask samples the same whatever else is in the call
    and in whatever order."""
    mask = np.asarray(mask, dtype=bool)
    return zlib.crc32(np.packbits(mask).tobytes(), zlib.crc32(np.asarray(mask.shape, dtype=np.int64).tobytes()))


def check_random_source(generator: RandomSource, batch_size: int) -> None:
    """Raise ValueError unless `generator` is None, a torch.Generator, or a sequence of `batch_size` of them."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, Sequence) or not all(isinstance(item, torch.Generator) for item in generator):
        raise ValueError(
            f"generator: expected None, a torch.Generator or a list of them (one per object), got {type(generator)}"
        )
    if len(generator) != batch_size:
        raise ValueError(f"generator: expected one torch.Generator per object ({batch_size}), got {len(generator)}")


def _draw(
    shape: Sequence[int], device: torch.device, generator: RandomSource, fill: Callable[[torch.Tensor, object], None]
) -> torch.Tensor:
    """A float32 tensor of `shape` filled in place by `fill(tensor, generator)`; with one generator per object,
    each object's equal share of the rows (dim 0) is filled from its own generator."""
    if generator is None or isinstance(generator, torch.Generator):
        values = torch.empty(shape, device=device)
        fill(values, generator)
        return values
    rows_per_object = shape[0] // len(generator)
    chunks = []
    for item in generator:
        chunk = torch.empty((rows_per_object, *shape[1:]), device=device)
        fill(chunk, item)
        chunks.append(chunk)
    return torch.cat(chunks)


def _fill_exponential(values: torch.Tensor, source: torch.Generator | None) -> None:
    values.exponential_(1.0, generator=source)


def uniform_noise(shape: Sequence[int], device: torch.device, generator: RandomSource) -> torch.Tensor:
    """U[0, 1) samples of `shape`, as `torch.rand` draws them from each generator."""
    return _draw(shape, device, generator, lambda values, source: values.uniform_(0.0, 1.0, generator=source))


def gumbel_noise(shape: torch.Size, device: torch.device, generator: RandomSource) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples, drawn from `generator` (or the global RNG when it is None)."""
    uniform = uniform_noise(shape, device, generator)
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


def sample_from_probabilities(probabilities: torch.Tensor, generator: RandomSource, greedy: bool) -> torch.Tensor:
    """One code per cell. `probabilities (batch, cells, vocab)` -> `(batch, cells)` long.

    Sampling is the exponential race argmax(p / q), q ~ Exp(1), which draws each code with probability p. On the
    CPU it is what `torch.multinomial` does for one sample and draws the same codes from `generator`; on CUDA
    multinomial draws differently, so seeded GPU samples differ from multinomial's (each is reproducible). It has
    none of multinomial's input checks, which wait for the device on older torch versions. No host sync, so the
    MaskGIT loop can run ahead.
    """
    if greedy:
        return probabilities.argmax(dim=-1)
    race = _draw(probabilities.shape, probabilities.device, generator, _fill_exponential)
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    return (flat / race.view_as(flat)).argmax(dim=-1).view(probabilities.shape[:-1])


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
        generator: RandomSource = None,
        greedy: bool = False,
    ) -> SamplingResult:
        """Run the decoding.

        Args:
            logits_fn: maps tokens `(batch, cells)` to logits `(batch, cells, vocab + 1)`; the last column is
                [MASK] and is never sampled.
            initial_tokens: `(batch, cells)` long, usually all `mask_token_id`.
            mask_token_id: the [MASK] index.
            generator: RNG of the sampling and the Gumbel noise (`RandomSource`); None uses the global RNG.
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
        generator: RandomSource,
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
    "RandomSource",
    "SamplingResult",
    "check_random_source",
    "cosine_mask_ratio",
    "draw_training_mask",
    "keep_top_k_logits",
    "mask_key",
    "object_generators",
    "object_seed",
]
