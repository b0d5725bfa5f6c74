"""The C2F-Seg model bundle: everything a saved folder needs to load and run where `c2f_hf` is not installed.

`c2f-hf export` copies every module of this folder but this `__init__.py` and the `convert_*` scripts into the
Hub repo, where `trust_remote_code` imports them side by side. So the bundle's rule, which
`tests/models/c2f_seg/test_bundle.py` enforces: its modules import only the standard library, torch,
transformers, huggingface_hub, safetensors, numpy, PIL and each other (relatively); nothing of `c2f_hf` outside
this folder.
"""

from .configuration_c2f_seg import C2FSegConfig, C2FSegRefinerConfig, C2FSegTransformerConfig, C2FSegVQConfig
from .image_processing_c2f_seg import C2FSegImageProcessor
from .modeling_c2f_seg import (
    C2FSegForAmodalSegmentation,
    C2FSegMaskTransformer,
    C2FSegPreTrainedModel,
    C2FSegRefiner,
    C2FSegVQModel,
)
from .pipeline_amodal_segmentation import AmodalSegmentationPipeline
from .pipeline_video_amodal_segmentation import VideoAmodalSegmentationPipeline
from .video_processing_c2f_seg import C2FSegVideoProcessor

__all__ = [
    "AmodalSegmentationPipeline",
    "C2FSegConfig",
    "C2FSegForAmodalSegmentation",
    "C2FSegImageProcessor",
    "C2FSegMaskTransformer",
    "C2FSegPreTrainedModel",
    "C2FSegRefiner",
    "C2FSegRefinerConfig",
    "C2FSegTransformerConfig",
    "C2FSegVQConfig",
    "C2FSegVQModel",
    "C2FSegVideoProcessor",
    "VideoAmodalSegmentationPipeline",
]
