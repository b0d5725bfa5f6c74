"""The README's Python examples run as written (against the shipped default model)."""

import json
import re
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from c2f_hf.checkpoints import default_model_path, default_video_model_path

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_the_two_set_up_commands_first():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    assert commands[0].strip() == "pip install torch==2.13.0 && pip install -e . && c2f-hf demo --out outputs/demo"
    assert commands[1].strip().endswith("python -m pytest -q")
    assert "blocks[1]" in (README.parent / ".ci" / "run").read_text(), "CI must run the README's test command"


def test_readme_python_examples_run():
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    objects, masks = namespace["objects"], namespace["masks"]
    assert len(objects) == len(namespace["scene"].objects) == masks.shape[0]
    assert isinstance(objects[0]["amodal_mask"], PIL.Image.Image)
    assert masks.dtype == torch.bool and masks.shape[1:] == namespace["scene"].image.shape[:2]
    assert np.asarray(objects[0]["amodal_mask"]).shape == namespace["scene"].image.shape[:2]


def test_readme_states_the_shipped_models_decoding_defaults():
    text = " ".join(README.read_text().split())
    image, video = (
        json.loads((folder / "config.json").read_text())
        for folder in (default_model_path(), default_video_model_path())
    )
    image_threshold, video_threshold = (
        json.loads((folder / "preprocessor_config.json").read_text())["mask_threshold"]
        for folder in (default_model_path(), default_video_model_path())
    )
    assert (
        f"`num_sampling_steps`: {image['num_sampling_steps']} in the shipped image model, "
        f"{video['num_sampling_steps']} in the shipped video model" in text
    )
    assert f"{image_threshold:g} in the shipped image model and {video_threshold:g} in the shipped video model" in text
