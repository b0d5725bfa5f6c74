"""spaces_demo/segmenters.py: the Space variables, the model card link, and the controls' defaults read without
loading the model, equal to the loaded pipeline's."""

import json
import shutil

import huggingface_hub.constants
import numpy as np
import pytest
import yaml

from c2f_hf.checkpoints import default_model_path, default_video_model_path
from segmenters import (
    PRELOADED_SAM2_MODEL,
    PRELOADED_SAM_MODEL,
    SHIPPED_MODEL_CARD_URL,
    ModelSources,
    load_segmenter,
    preloaded,
    result_mask,
)
from spaces_demo_testing import DEMO_DIR


def test_sources_come_from_the_space_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("C2F_HF_MODEL", "someone/c2f-seg")
    monkeypatch.setenv("C2F_HF_VIDEO_MODEL", str(tmp_path))
    monkeypatch.setenv("C2F_HF_SAM_MODEL", "")
    monkeypatch.setenv("C2F_HF_SAM2_MODEL", "")
    sources = ModelSources.from_environment()
    assert sources == ModelSources(image="someone/c2f-seg", video=str(tmp_path), sam=None, sam2=None)
    assert sources.model_card_url() == "https://huggingface.co/someone/c2f-seg"
    assert ModelSources(image=str(tmp_path)).model_card_url() == SHIPPED_MODEL_CARD_URL
    shipped = ModelSources()
    assert (shipped.image_model, shipped.video_model) == (str(default_model_path()), str(default_video_model_path()))
    assert shipped.model_card_url() == SHIPPED_MODEL_CARD_URL
    monkeypatch.setenv("C2F_HF_SAM2_MODEL", "someone/sam2")
    assert ModelSources.from_environment().sam2 == "someone/sam2"


@pytest.mark.parametrize(("repo_id", "field"), [(PRELOADED_SAM_MODEL, "sam"), (PRELOADED_SAM2_MODEL, "sam2")])
def test_the_prompt_models_the_space_preloads_are_its_defaults_once_in_the_hub_cache(
    monkeypatch, tmp_path, repo_id, field
):
    front_matter = yaml.safe_load((DEMO_DIR / "README.md").read_text().split("---\n")[1])
    assert repo_id in front_matter["preload_from_hub"]
    assert preloaded(repo_id, cache_dir=tmp_path) is None
    snapshot = tmp_path / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abc")
    assert preloaded(repo_id, cache_dir=tmp_path) == repo_id
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("C2F_HF_SAM_MODEL", raising=False)
    monkeypatch.delenv("C2F_HF_SAM2_MODEL", raising=False)
    assert getattr(ModelSources.from_environment(), field) == repo_id


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


def test_the_seed_help_says_the_seed_is_inert_at_one_step_where_the_model_takes_the_most_likely_code(
    tiny_model, tmp_path
):
    argmax_model = tmp_path / "argmax_model"
    shutil.copytree(tiny_model, argmax_model)
    config = json.loads((argmax_model / "config.json").read_text())
    assert config["sampling_top_k"] > 1
    (argmax_model / "config.json").write_text(json.dumps({**config, "sampling_top_k": 1}))
    assert ModelSources(image=str(tiny_model)).seed_info() == "Same seed and inputs, same result."
    argmax_sources = ModelSources(image=str(argmax_model))
    assert "the seed matters only for K > 1" in argmax_sources.seed_info()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    visible_mask = np.zeros((64, 64), dtype=bool)
    visible_mask[20:40, 16:36] = True
    coarse_masks = [
        result_mask(
            argmax_sources.segmenter()(image, visible_masks=[visible_mask], num_steps=1, seed=seed, return_coarse=True)[
                0
            ]["coarse_amodal_mask"]
        )
        for seed in (0, 1, 2)
    ]
    assert all(np.array_equal(mask, coarse_masks[0]) for mask in coarse_masks[1:])
