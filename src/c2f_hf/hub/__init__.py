"""Hub material in one place: export a model folder as a complete Hub repo (`export`), upload it (`push`, also the
upload of `c2f-hf data push`), convert the authors' checkpoints (`convert`), the model and Space cards (`cards`)
and their templates (`templates/`, package data). The commands are `cli`; they need the `hub` extra."""

from ..lazy_exports import lazy_exports

# Each name is imported from its module on first use, so `c2f_hf.hub.push` (which `c2f-hf data push` uploads with)
# does not import the converter, and reading `templates/` imports nothing (see `c2f_hf.lazy_exports`).
__getattr__ = lazy_exports(
    __name__,
    {
        "cards": ("ConversionRecord", "EvaluationSource", "build_model_card", "build_space_card"),
        "convert": ("convert_original_checkpoint",),
        "export": ("ExportOptions", "check_remote_code", "export_model"),
        "push": ("push_folder", "upload_to_hub"),
    },
)

__all__ = [
    "ConversionRecord",
    "EvaluationSource",
    "ExportOptions",
    "build_model_card",
    "build_space_card",
    "check_remote_code",
    "convert_original_checkpoint",
    "export_model",
    "push_folder",
    "upload_to_hub",
]
