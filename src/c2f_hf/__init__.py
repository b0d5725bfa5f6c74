"""c2f_hf: C2F-Seg amodal segmentation as Hugging Face transformers models.

`import c2f_hf` registers the configurations and models with the `transformers` Auto classes, and marks them for
`trust_remote_code` export so a saved folder also loads where this package is not installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_c2f_seg import C2FSegConfig, C2FSegRefinerConfig, C2FSegTransformerConfig, C2FSegVQConfig
from .maskgit import MaskGITSampler
from .modeling_c2f_seg import (
    C2FSegForAmodalSegmentation,
    C2FSegMaskTransformer,
    C2FSegPreTrainedModel,
    C2FSegRefiner,
    C2FSegVQModel,
)

__version__ = "0.1.0"

_MODEL_CLASSES = {
    C2FSegConfig: C2FSegForAmodalSegmentation,
    C2FSegVQConfig: C2FSegVQModel,
    C2FSegTransformerConfig: C2FSegMaskTransformer,
    C2FSegRefinerConfig: C2FSegRefiner,
}


def _register_auto_classes() -> None:
    for config_class, model_class in _MODEL_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        config_class.register_for_auto_class()
        model_class.register_for_auto_class("AutoModel")


_register_auto_classes()

__all__ = [
    "C2FSegConfig",
    "C2FSegForAmodalSegmentation",
    "C2FSegMaskTransformer",
    "C2FSegPreTrainedModel",
    "C2FSegRefiner",
    "C2FSegRefinerConfig",
    "C2FSegTransformerConfig",
    "C2FSegVQConfig",
    "C2FSegVQModel",
    "MaskGITSampler",
]
