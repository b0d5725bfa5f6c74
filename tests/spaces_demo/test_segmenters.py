"""spaces_demo/segmenters.py: the Space variables, the model card link, and the controls' defaults read without
loading the model, equal to the loaded pipeline's."""

import shutil

from c2f_hf.checkpoints import default_model_path, default_video_model_path
from segmenters import SHIPPED_MODEL_CARD_URL, ModelSources, load_segmenter


def test_sources_come_from_the_space_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("C2F_HF_MODEL", "someone/c2f-seg")
    monkeypatch.setenv("C2F_HF_VIDEO_MODEL", str(tmp_path))
    monkeypatch.setenv("C2F_HF_SAM_MODEL", "")
    sources = ModelSources.from_environment()
    assert sources == ModelSources(image="someone/c2f-seg", video=str(tmp_path), sam=None)
    assert sources.model_card_url() == "https://huggingface.co/someone/c2f-seg"
    assert ModelSources(image=str(tmp_path)).model_card_url() == SHIPPED_MODEL_CARD_URL
    shipped = ModelSources()
    assert (shipped.image_model, shipped.video_model) == (str(default_model_path()), str(default_video_model_path()))
    assert shipped.model_card_url() == SHIPPED_MODEL_CARD_URL


def test_default_settings_are_the_loaded_pipelines_with_or_without_a_processor_file(tiny_model, tmp_path):
    without_processor = tmp_path / "without_processor"
    shutil.copytree(tiny_model, without_processor)
    (without_processor / "preprocessor_config.json").unlink()
    for folder, threshold in ((tiny_model, 0.4), (without_processor, 0.5)):
        sources = ModelSources(image=str(folder))
        assert sources.default_settings() == (2, threshold)
        segmenter = sources.segmenter()
        assert segmenter is load_segmenter(str(folder), None), "loaded once"
        assert (segmenter.model.config.num_sampling_steps, segmenter.image_processor.mask_threshold) == (2, threshold)
