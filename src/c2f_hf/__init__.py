"""c2f_hf: C2F-Seg amodal segmentation as Hugging Face transformers models.

`import c2f_hf` registers the configurations and models with the `transformers` Auto classes, the image processor
for both of `AutoImageProcessor`'s backends (it works on PIL / numpy; where torchvision is installed,
transformers asks for a "torchvision" processor first and would warn on every load), and the
`amodal-segmentation` and `video-amodal-segmentation` pipelines with the shipped models as their defaults, so
`pipeline("amodal-segmentation")` works offline. A folder written by `save_pretrained` holds no `auto_map`, so it
loads without a `trust_remote_code` question; `c2f-hf export` adds one (`hub.export.marked_for_remote_code`)
together with the code it names.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .checkpoints import DEFAULT_MODEL_NAME, DEFAULT_VIDEO_MODEL_NAME, shipped_folder
from .models.c2f_seg import (
    AmodalSegmentationPipeline,
    C2FSegConfig,
    C2FSegForAmodalSegmentation,
    C2FSegImageProcessor,
    C2FSegMaskTransformer,
    C2FSegPreTrainedModel,
    C2FSegRefiner,
    C2FSegRefinerConfig,
    C2FSegTransformerConfig,
    C2FSegVideoProcessor,
    C2FSegVQConfig,
    C2FSegVQModel,
    VideoAmodalSegmentationPipeline,
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
    AutoImageProcessor.register(
        C2FSegConfig,
        image_processor_classes={"pil": C2FSegImageProcessor, "torchvision": C2FSegImageProcessor},
        exist_ok=True,
    )
    PIPELINE_REGISTRY.register_pipeline(
        "amodal-segmentation",
        pipeline_class=AmodalSegmentationPipeline,
        pt_model=AutoModel,
        default={"model": (str(shipped_folder(DEFAULT_MODEL_NAME)), None)},
        type="image",
    )
    PIPELINE_REGISTRY.register_pipeline(
        "video-amodal-segmentation",
        pipeline_class=VideoAmodalSegmentationPipeline,
        pt_model=AutoModel,
        default={"model": (str(shipped_folder(DEFAULT_VIDEO_MODEL_NAME)), None)},
        type="video",
    )


_register_auto_classes()

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
