"""The Gradio demo in spaces_demo/: its functions, the launched app through gradio_client, and a real browser.

The browser test drives Debian's /usr/bin/chromium over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: NUL-terminated JSON on file descriptors 3 and 4), so it needs no extra package.
"""

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
import yaml
from gradio_client import Client, handle_file
from PIL import Image

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.hub.cards import build_space_card
from c2f_testing import tiny_config

DEMO_DIR = Path(__file__).resolve().parents[1] / "spaces_demo"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """spaces_demo/app.py imported with C2F_HF_MODEL pointing at a random tiny model whose default K is 2 (the video
    tab uses the shipped video model)."""
    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    C2FSegForAmodalSegmentation(tiny_config(num_sampling_steps=2)).save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=64).save_pretrained(folder)
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    patch.setenv("C2F_HF_MODEL", str(folder))
    patch.delenv("C2F_HF_VIDEO_MODEL", raising=False)
    spec = importlib.util.spec_from_file_location("spaces_demo_app", DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    patch.undo()


@pytest.fixture(scope="module")
def server(app):
    """The app launched on 127.0.0.1 at a free port; yields its URL."""
    _, url, _ = app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    app.demo.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def example_value(app, name: str) -> dict:
    """The editor value of a shipped example as gr.ImageMask hands it to the handler (RGBA arrays)."""
    background = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}.png").convert("RGBA"))
    layer = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}_mask.png").convert("RGBA"))
    return {"background": background, "layers": [layer], "composite": background}


def video_example(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames strip `(H, 8 W, 3)`, label strip `(H, 8 W)`) of a shipped video example as gr.Image hands them over."""
    folder = DEMO_DIR / "examples" / "video"
    frames = np.asarray(Image.open(folder / f"{name}_frames.png").convert("RGB"))
    return frames, np.asarray(Image.open(folder / f"{name}_masks.png").convert("L"))


def test_examples_are_small_pairs_of_image_and_painted_mask(app):
    rows = app.example_rows()
    assert len(rows) == 5
    total = sum(path.stat().st_size for path in (DEMO_DIR / "examples").iterdir())
    assert total < 400_000, f"examples take {total} bytes"
    for editor_value, *_ in rows:
        image = Image.open(editor_value["background"])
        layer = np.asarray(Image.open(editor_value["layers"][0]))
        assert image.mode == "RGB" and layer.shape[:2] == image.size[::-1] and layer[..., 3].any()


def test_the_steps_slider_starts_at_the_models_default(app):
    sliders = [block for block in app.demo.blocks.values() if getattr(block, "label", None) == "MaskGIT steps K"]
    assert [slider.value for slider in sliders] == [2] and app.default_num_steps() == 2


def test_two_colours_give_two_objects_and_the_outputs(app):
    output = app.run_demo(example_value(app, "photo_mug_behind_box"), 3, 0, 0.5)
    assert [row[1] for row in output.rows] == ["magenta", "sky blue"]
    for image in (output.overlay, output.coarse, output.refined):
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    for row in output.rows:
        assert 0.0 <= row[4] <= 100.0 and row[2] > 0
    assert output.notes == []


def test_seeded_runs_are_reproducible(app):
    first = app.run_demo(example_value(app, "synthetic_3"), 2, 7, 0.5)
    second = app.run_demo(example_value(app, "synthetic_3"), 2, 7, 0.5)
    assert np.array_equal(first.refined, second.refined) and first.rows == second.rows


def test_overlay_paints_visible_green_and_occluded_red(app):
    image = np.full((40, 40, 3), 128, dtype=np.uint8)
    visible = np.zeros((40, 40), dtype=bool)
    visible[5:15, 5:15] = True
    amodal = visible.copy()
    amodal[15:30, 5:15] = True
    overlay = app.render_overlay(image, [("magenta", visible)], [amodal]).astype(int)
    assert overlay[10, 10, 1] > overlay[10, 10, 0] and overlay[22, 10, 0] > overlay[22, 10, 1]
    assert tuple(overlay[5, 5]) == (255, 0, 255) and tuple(overlay[35, 35]) == (128, 128, 128)


def test_no_mask_painted_is_a_readable_error(app):
    value = example_value(app, "synthetic_3")
    value["layers"] = [np.zeros_like(value["layers"][0])]
    with pytest.raises(app.DemoInputError, match="No visible mask painted"):
        app.run_demo(value, 3, 0, 0.5)
    with pytest.raises(gr.Error, match="No visible mask painted"):
        app.predict({**value, "layers": []}, 3, 0, 0.5)
    with pytest.raises(gr.Error, match="No image"):
        app.predict(None, 3, 0, 0.5)
    value["layers"][0][0, 0] = (255, 0, 255, 255)
    with pytest.raises(gr.Error, match="too small"):
        app.predict(value, 3, 0, 0.5)


def test_grayscale_image_is_used_with_a_note(app):
    value = example_value(app, "synthetic_3")
    gray = np.asarray(Image.fromarray(value["background"]).convert("L").convert("RGBA"))
    output = app.run_demo({**value, "background": gray}, 3, 0, 0.5)
    assert len(output.rows) >= 1 and any("Grayscale image" in note for note in output.notes)
    two_dimensional = app.run_demo({**value, "background": gray[..., 0]}, 3, 0, 0.5)
    assert any("Grayscale image" in note for note in two_dimensional.notes)


def test_huge_image_is_downscaled_with_a_note(app):
    value = example_value(app, "photo_ball_behind_books")
    big = {
        "background": np.asarray(Image.fromarray(value["background"]).resize((3200, 2400))),
        "layers": [np.asarray(Image.fromarray(value["layers"][0]).resize((3200, 2400), Image.NEAREST))],
    }
    output = app.run_demo(big, 3, 0, 0.5)
    assert output.overlay.shape == (768, 1024, 3)
    assert any("3200x2400 pixels scaled down to 1024x768" in note for note in output.notes)
    status = app.predict(big, 3, 0, 0.5)[-1]
    assert "scaled down" in status


def test_video_examples_are_small_strips_with_a_fully_hidden_object(app):
    rows = app.video_example_rows()
    assert len(rows) == 3
    total = sum(path.stat().st_size for path in (DEMO_DIR / "examples" / "video").iterdir())
    assert total < 300_000, f"video examples take {total} bytes"
    for frames_path, masks_path, num_frames, *_ in rows:
        frames, labels = np.asarray(Image.open(frames_path)), np.asarray(Image.open(masks_path))
        assert frames.shape == (128, 128 * num_frames, 3) and labels.shape == frames.shape[:2]
        per_frame = labels.reshape(128, num_frames, 128).transpose(1, 0, 2)
        assert any(not (per_frame[frame] == 1).any() for frame in range(num_frames))


def test_video_example_gives_one_overlay_per_frame_and_a_table(app):
    frames, labels = video_example("clip_3")
    output = app.run_video_demo(frames, labels, 8, 0, False)
    assert len(output.overlays) == 8
    assert all(overlay.shape == (128, 128, 3) and overlay.dtype == np.uint8 for overlay in output.overlays)
    assert [row[:3] for row in output.rows[:2]] == [[1, "magenta", 0], [1, "magenta", 1]]
    assert len(output.rows) == 3 * 8 and all(0.0 <= row[5] <= 100.0 for row in output.rows)
    hidden = [row for row in output.rows if row[0] == 1 and row[3] == 0]
    assert hidden and all(row[5] == (100.0 if row[4] else 0.0) for row in hidden)
    gallery, table, status = app.predict_video(frames, labels, 8, 0, True)
    assert [caption for _, caption in gallery] == [f"frame {frame}" for frame in range(8)]
    assert len(table) == 24 and "3 objects over 8 frames" in status


def test_an_object_hidden_for_a_whole_window_is_completed(app):
    frames, labels = video_example("clip_3")
    hidden = labels.copy()
    window = hidden[:, 2 * 128 : 6 * 128]
    window[window == 1] = 0
    gallery, table, status = app.predict_video(frames, hidden, 8, 0, True)
    assert len(gallery) == 8 and len(table) == 24 and "3 objects over 8 frames" in status
    hidden_rows = [row for row in table if row[0] == 1 and 2 <= row[2] <= 5]
    assert len(hidden_rows) == 4 and all(row[3] == 0 for row in hidden_rows)


def test_video_bad_input_is_a_readable_error(app):
    frames, labels = video_example("clip_3")
    with pytest.raises(gr.Error, match="does not split into 7 frames"):
        app.predict_video(frames, labels, 7, 0, False)
    with pytest.raises(gr.Error, match="No clip"):
        app.predict_video(None, labels, 8, 0, False)
    with pytest.raises(gr.Error, match="mask strip is empty"):
        app.predict_video(frames, np.zeros_like(labels), 8, 0, False)


def test_space_readme_front_matter_matches_the_card_builder():
    readme = (DEMO_DIR / "README.md").read_text()
    front_matter = yaml.safe_load(readme.split("---\n")[1])
    assert front_matter["sdk"] == "gradio" and front_matter["app_file"] == "app.py"
    assert front_matter["sdk_version"].split(".")[0] == gr.__version__.split(".")[0]
    assert front_matter["models"]
    card = build_space_card(front_matter["title"], front_matter["models"], front_matter["sdk_version"])
    assert readme == str(card) + "\n" or readme == str(card)
    requirements = (DEMO_DIR / "requirements.txt").read_text()
    for package in ("torch", "transformers", "numpy", "pillow"):
        assert package in requirements.lower()


def test_launched_app_through_gradio_client(app, server):
    client = Client(server, verbose=False)
    editor = {
        "background": handle_file(str(DEMO_DIR / "examples" / "photo_mug_behind_box.png")),
        "layers": [handle_file(str(DEMO_DIR / "examples" / "photo_mug_behind_box_mask.png"))],
        "composite": None,
    }
    overlay, coarse, refined, table, status = client.predict(editor, 3, 0, 0.5, api_name="/segment")
    for path in (overlay, coarse, refined):
        assert Image.open(path).size == (320, 240)
    assert [row[1] for row in table["data"]] == ["magenta", "sky blue"]
    assert "2 objects" in status and "per object" in status
    no_mask = {**editor, "layers": []}
    with pytest.raises(Exception, match="No visible mask painted"):
        client.predict(no_mask, 3, 0, 0.5, api_name="/segment")


def test_launched_app_video_through_gradio_client(app, server):
    client = Client(server, verbose=False)
    folder = DEMO_DIR / "examples" / "video"
    frames, masks = handle_file(str(folder / "clip_6_frames.png")), handle_file(str(folder / "clip_6_masks.png"))
    gallery, table, status = client.predict(frames, masks, 8, 0, False, api_name="/segment_video")
    assert len(gallery) == 8 and gallery[0]["caption"] == "frame 0"
    assert all(Image.open(item["image"]).size == (128, 128) for item in gallery)
    assert len(table["data"]) == 3 * 8 and "over 8 frames" in status
    with pytest.raises(Exception, match="does not split into 5 frames"):
        client.predict(frames, masks, 5, 0, False, api_name="/segment_video")


class DevToolsPipe:
    """A minimal Chrome DevTools Protocol client over chromium's `--remote-debugging-pipe`."""

    def __init__(self, user_data_dir: Path, window: tuple[int, int] = (1400, 1900)):
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()

        def use_pipes_as_fd_3_and_4():
            os.dup2(command_read, 3)
            os.dup2(reply_write, 4)

        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe"]
        self.process = subprocess.Popen(
            [str(CHROMIUM), *flags, f"--window-size={window[0]},{window[1]}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=use_pipes_as_fd_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(command_read)
        os.close(reply_write)
        self.writer = os.fdopen(command_write, "wb", buffering=0)
        self.reader = os.fdopen(reply_read, "rb", buffering=0)
        self.pending, self.last_id, self.session = b"", 0, None
        page = next(target for target in self.send("Target.getTargets")["targetInfos"] if target["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def send(self, method: str, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.pending:
                chunk = self.reader.read(1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe during {method}")
                self.pending += chunk
            raw, self.pending = self.pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_browser_clicks_an_example_segments_opens_the_video_tab_and_screenshots(server, tmp_path):
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelectorAll('tr.tr-body').length >= 5")
        browser.evaluate("document.querySelectorAll('tr.tr-body')[1].click()")
        browser.wait_for("document.querySelector('#editor canvas') !== null")
        time.sleep(1.0)
        browser.evaluate("document.querySelector('#segment').click()")
        browser.wait_for("(document.querySelector('#status') || {}).innerText?.includes('per object')")
        browser.wait_for("['overlay', 'coarse', 'refined'].every(id => document.querySelector(`#${id} img`))")
        status = browser.evaluate("document.querySelector('#status').innerText")
        table = browser.evaluate("document.querySelector('#objects').textContent")
        time.sleep(0.5)
        screenshot = tmp_path / "spaces_demo_screenshot.png"
        browser.screenshot(screenshot)
        browser.evaluate(
            "[...document.querySelectorAll('button[role=\"tab\"]')].find(tab => tab.innerText.includes('Video'))"
            ".click()"
        )
        browser.wait_for("(document.querySelector('#segment_video') || {}).offsetParent != null")
        time.sleep(0.5)
        video_screenshot = tmp_path / "spaces_demo_video_tab.png"
        browser.screenshot(video_screenshot)
    finally:
        browser.close()
    print(f"screenshots: {screenshot} {video_screenshot}")
    assert "2 objects" in status, status
    assert "magenta" in table and "sky blue" in table, table
    assert Image.open(screenshot).size[0] >= 1000
