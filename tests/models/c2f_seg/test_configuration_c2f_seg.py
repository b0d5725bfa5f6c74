import pytest
from transformers import AutoConfig, ResNetConfig

from c2f_hf import C2FSegConfig, C2FSegRefinerConfig, C2FSegTransformerConfig, C2FSegVQConfig
from c2f_testing import tiny_config


def test_defaults_are_the_papers_kins_configuration():
    config = C2FSegConfig()
    assert config.image_size == 256
    assert config.vq_config.latent_size == 16
    assert config.vq_config.codebook_size == 256
    assert config.transformer_config.hidden_size == 768
    assert config.transformer_config.num_hidden_layers == 12
    assert config.transformer_config.num_attention_heads == 12
    assert config.transformer_config.sequence_length == 256
    assert config.num_sampling_steps == 3
    assert isinstance(config.backbone_config, ResNetConfig)
    assert config.backbone_config.hidden_sizes == [256, 512, 1024, 2048]
    assert list(config.backbone_config.depths) == [3, 4, 6, 3]


def test_composite_config_round_trips_through_auto_config(tmp_path):
    config = tiny_config(num_sampling_steps=5)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, C2FSegConfig)
    without_path = lambda values: {k: v for k, v in values.items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(loaded.to_dict()) == without_path(config.to_dict())
    assert isinstance(loaded.vq_config, C2FSegVQConfig)
    assert isinstance(loaded.refiner_config, C2FSegRefinerConfig)


def test_sub_config_loads_from_the_composite_file(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    assert C2FSegVQConfig.from_pretrained(tmp_path).base_channels == 8


def tiny_config_with(sub_config: str, **changes) -> C2FSegConfig:
    values = tiny_config().to_dict()
    values[sub_config].update(changes)
    return C2FSegConfig(**values)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            lambda: C2FSegTransformerConfig(hidden_size=30, num_attention_heads=4),
            "divisible by num_attention_heads",
        ),
        (lambda: C2FSegTransformerConfig(hidden_size=18, num_attention_heads=3), "divisible by 4"),
        (lambda: C2FSegTransformerConfig(sequence_length=250), "square number"),
        (lambda: C2FSegTransformerConfig(attention_dropout=1.5), "attention_dropout"),
        (lambda: C2FSegVQConfig(resolution=100), "divisible by the downsampling factor"),
        (lambda: C2FSegVQConfig(base_channels=20), "norm_num_groups"),
        (lambda: C2FSegRefinerConfig(backbone_channels=[1, 2, 3]), "4 feature maps"),
        (lambda: C2FSegConfig(image_size=128), "vq_config.resolution"),
        (lambda: tiny_config_with("transformer_config", sequence_length=64), "token grid must match"),
        (
            lambda: tiny_config_with("refiner_config", backbone_channels=[1, 2, 3, 4]),
            "refiner_config.backbone",
        ),
        (lambda: tiny_config_with("transformer_config", vocab_size=8), r"vocab_size \(8\) must be at least"),
        (lambda: tiny_config(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
        (lambda: tiny_config(min_mask_ratio=1.5), r"min_mask_ratio must be in \[0, 1\]"),
    ],
)
def test_configs_reject_nonsense_with_a_clear_error(factory, message):
    with pytest.raises(Exception, match=message):
        factory()


def test_a_vocabulary_larger_than_the_codebook_is_allowed_as_in_the_authors_fishbowl_model():
    assert tiny_config_with("transformer_config", vocab_size=32).transformer_config.vocab_size == 32


def test_a_min_mask_ratio_of_one_is_allowed():
    assert tiny_config(min_mask_ratio=1.0).min_mask_ratio == 1.0


def test_backbone_reads_four_stages_with_a_stride_one_last_stage_by_default():
    config = C2FSegConfig()
    assert config.backbone_last_stage_stride == 1
    assert config.backbone_output_stride == 16
    assert config.backbone_config.out_features == ["stage1", "stage2", "stage3", "stage4"]
    assert config.initializer_range == config.transformer_config.initializer_range == 0.02
    assert config.vq_config.initializer_range == config.refiner_config.initializer_range == 0.02


def test_backbone_last_stage_stride_is_validated():
    with pytest.raises(Exception, match=r"backbone_last_stage_stride must be 1 or 2, got 3"):
        tiny_config(backbone_last_stage_stride=3)
    with pytest.raises(Exception, match=r"the token grid must match the image feature grid"):
        tiny_config(backbone_last_stage_stride=2)
