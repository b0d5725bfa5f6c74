"""The reweighted token loss (`occluded_token_weight`, `hidden_frame_token_weight`)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.presets import model_config
from c2f_hf.training.c2f import (
    fully_hidden_frames,
    occluded_cell_weights,
    reweighted_token_loss,
    token_loss_weights,
    weighted_token_loss,
)
from c2f_hf.training.config import resolve_config


def test_cells_holding_occluded_pixels_get_the_weight():
    amodal = torch.zeros(1, 1, 8, 8)
    amodal[..., :4, :] = 1.0
    visible = amodal.clone()
    visible[..., :4, 4:] = 0.0  # the top-right quarter is hidden
    weights = occluded_cell_weights(amodal, visible, grid_size=2, weight=5.0)
    assert weights.tolist() == [[1.0, 5.0, 1.0, 1.0]]


def test_unit_weights_give_the_authors_cross_entropy():
    logits, tokens = torch.randn(2, 4, 7), torch.randint(0, 7, (2, 4))
    expected = F.cross_entropy(logits.reshape(-1, 7), tokens.reshape(-1), label_smoothing=0.1)
    loss = weighted_token_loss(logits, tokens, torch.ones(2, 4), label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


def test_a_weight_must_be_positive():
    with pytest.raises(ValueError, match="occluded_token_weight: expected a positive finite number, got 0.0"):
        resolve_config("c2f", "micro", {"vq_model": "vq", "occluded_token_weight": 0.0})


def test_only_frames_where_the_object_is_there_but_unseen_count_as_fully_hidden():
    amodal = torch.zeros(3, 1, 8, 8)
    amodal[:2, :, 2:6, 2:6] = 1.0  # frames 0 and 1 hold the object, frame 2 does not
    visible = torch.zeros(3, 1, 8, 8)
    visible[1, :, 2:4, 2:6] = 1.0  # frame 1 shows half of it
    assert fully_hidden_frames(amodal, visible).tolist() == [True, False, False]


def test_every_cell_of_a_fully_hidden_frame_gets_the_hidden_frame_weight():
    amodal = torch.zeros(2, 1, 8, 8)
    amodal[:, :, :4, :] = 1.0
    visible = amodal.clone()
    visible[1, :, :4, 4:] = 0.0  # frame 1: the top-right quarter hidden
    visible[0] = 0.0  # frame 0: all of it hidden
    weights = token_loss_weights(amodal, visible, grid_size=2, occluded_weight=5.0, hidden_frame_weight=3.0)
    assert weights.tolist() == [[15.0, 15.0, 3.0, 3.0], [1.0, 5.0, 1.0, 1.0]]


def micro_video_window_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One window of 2 frames at 64x64: the object visible in frame 0, fully hidden in frame 1."""
    amodal = torch.zeros(1, 2, 1, 64, 64)
    amodal[..., 16:48, 16:48] = 1.0
    visible = amodal.clone()
    visible[:, 0, ..., 16:32, :] = 0.0
    visible[:, 1] = 0.0
    return {
        "pixel_values": torch.rand(1, 2, 3, 64, 64, generator=generator),
        "visible_masks": visible,
        "visible_mask_targets": visible,
        "amodal_masks": amodal,
    }


def test_the_reweighted_loss_of_a_video_window_weighs_its_fully_hidden_frame():
    config = model_config("micro")
    config.transformer_config = dataclasses.replace(config.transformer_config, num_frames=2)
    model = C2FSegForAmodalSegmentation(config).eval()
    generator = torch.Generator().manual_seed(0)
    batch = micro_video_window_batch(generator)
    output = model(**batch, generator=generator)
    unit = reweighted_token_loss(model, batch, output.token_logits, 1.0, 1.0)
    torch.testing.assert_close(unit, output.token_loss)

    tokens = model.encode_masks(batch["amodal_masks"][0])
    logits = output.token_logits.reshape(2, tokens.shape[1], -1)
    per_frame = [F.cross_entropy(logits[frame], tokens[frame], label_smoothing=0.1) for frame in range(2)]
    weighted = reweighted_token_loss(model, batch, output.token_logits, 1.0, 3.0)
    torch.testing.assert_close(weighted, (per_frame[0] + 3.0 * per_frame[1]) / 4.0)


def test_a_hidden_frame_weight_must_be_positive():
    with pytest.raises(ValueError, match="hidden_frame_token_weight: expected a positive finite number, got -1.0"):
        resolve_config("c2f", "micro", {"vq_model": "vq", "hidden_frame_token_weight": -1.0})
