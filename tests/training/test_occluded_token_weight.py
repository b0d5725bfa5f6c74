"""The occlusion-weighted token loss (`occluded_token_weight`) and the coarse-mask ablation model."""

import pytest
import torch
import torch.nn.functional as F

from c2f_hf.training.c2f import occluded_cell_weights, weighted_token_loss
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
