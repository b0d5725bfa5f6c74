"""spaces_demo/app.py: importing it and building the page load no model; the launched app through gradio_client;
the launched process's allocator."""

import ctypes
import ctypes.util
import json
import os
import subprocess
import sys

import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from c2f_testing import ON_GLIBC
from spaces_demo_testing import DEMO_DIR

# In a fresh interpreter, as the Space starts (`python app.py` puts the app's folder first on sys.path): how often
# each loader ran and how many models (transformers' PreTrainedModel) exist, after importing the app, after
# building the page, and after the first image request's load.
NO_MODEL_AT_IMPORT = """
import gc, json
from transformers import PreTrainedModel
import app, segmenters

def state(stage):
    loaders = (segmenters.load_segmenter, segmenters.load_video_segmenter)
    calls = [loader.cache_info().misses for loader in loaders]
    cached = [loader.cache_info().currsize for loader in loaders]
    models = sum(isinstance(thing, PreTrainedModel) for thing in gc.get_objects())
    return {"stage": stage, "calls": calls, "cached": cached, "models": models}

states = [state("import")]
demo = app.build_demo()
states.append({**state("build"), "blocks": type(demo).__name__, "tabs": sorted(
    block.elem_id for block in demo.blocks.values() if block.elem_id in ("image_tab", "video_tab"))})
segmenters.ModelSources.from_environment().segmenter()
states.append(state("first request"))
print(json.dumps(states))
"""


def test_importing_the_app_and_building_the_page_load_no_model():
    environment = {key: value for key, value in os.environ.items() if not key.startswith("C2F_HF_")}
    states = json.loads(
        subprocess.run(
            [sys.executable, "-c", NO_MODEL_AT_IMPORT],
            cwd=DEMO_DIR,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
    )
    imported, built, requested = states
    for state in (imported, built):
        assert state["calls"] == [0, 0] and state["cached"] == [0, 0] and state["models"] == 0, state
    assert built["blocks"] == "Blocks" and built["tabs"] == ["image_tab", "video_tab"]
    assert requested["calls"] == [1, 0] and requested["cached"] == [1, 0] and requested["models"] > 0


class MallocInfo(ctypes.Structure):
    """glibc's `struct mallinfo2` (glibc >= 2.33): allocator statistics in bytes and counts."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def mmapped_bytes() -> int:
    """Bytes of the blocks glibc serves with an `mmap` of their own (`mallinfo2().hblkhd`)."""
    mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    mallinfo2.restype = MallocInfo
    return mallinfo2().hblkhd


@pytest.mark.skipif(not ON_GLIBC, reason="glibc's allocator only")
def test_launched_space_serves_large_tensors_from_the_heap(server):
    before = mmapped_bytes()
    tensor = torch.ones(2**24)
    # By default glibc maps a 64 MiB block of its own (and unmaps it on free); the Space's allocator takes it from
    # its heap, where freed memory stays for reuse.
    assert mmapped_bytes() - before < tensor.nbytes


def test_launched_app_through_gradio_client(server):
    client = Client(server, verbose=False)
    editor = {
        "background": handle_file(str(DEMO_DIR / "examples" / "photo_mug_behind_box.png")),
        "layers": [handle_file(str(DEMO_DIR / "examples" / "photo_mug_behind_box_mask.png"))],
        "composite": None,
    }
    result, coarse, refined, table, status = client.predict(editor, 2, 0, 0.5, api_name="/segment")
    assert [Image.open(item["path"] if isinstance(item, dict) else item).size for item in result] == [(320, 240)] * 2
    for path in (coarse, refined):
        assert Image.open(path).size == (320, 240)
    assert [row[0] for row in table["data"]] == [1, 2] and "Done: 2 objects" in status
    *_, status = client.predict({**editor, "layers": []}, 2, 0, 0.5, api_name="/segment")
    assert "No visible mask" in status


def test_launched_app_video_through_gradio_client(server):
    client = Client(server, verbose=False)
    folder = DEMO_DIR / "examples" / "video"
    frames, masks = handle_file(str(folder / "clip_6_frames.png")), handle_file(str(folder / "clip_6_masks.png"))
    gallery, table, status = client.predict(None, frames, masks, 8, 0, False, api_name="/segment_video")
    assert len(gallery) == 8 and gallery[0]["caption"] == "frame 0"
    assert len(table["data"]) == 3 * 8 and "over 8 frames" in status
    *_, status = client.predict(None, frames, masks, 5, 0, False, api_name="/segment_video")
    assert "does not split into 5 frames" in status
