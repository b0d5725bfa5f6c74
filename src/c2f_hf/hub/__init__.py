"""Hub material in one place: export a model folder as a complete Hub repo (`export`), upload it (`push`), the
model and Space cards (`cards`) and their templates (`templates/`, package data)."""

from .cards import EvaluationSource, build_model_card, build_space_card
from .export import ExportOptions, check_remote_code, export_model
from .push import push_folder

__all__ = [
    "EvaluationSource",
    "ExportOptions",
    "build_model_card",
    "build_space_card",
    "check_remote_code",
    "export_model",
    "push_folder",
]
