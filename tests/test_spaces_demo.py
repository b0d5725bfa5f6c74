"""The Gradio demo in spaces_demo/: its functions, the launched app through gradio_client, and a real browser.

The browser tests drive Debian's /usr/bin/chromium over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: NUL-terminated JSON on file descriptors 3 and 4), so they need no extra package. Two
apps are launched: `app` as the default Space runs (painting, no SAM) and `sam_app` with a tiny random SAM model
configured through `C2F_HF_SAM_MODEL`. Screenshots go to /tmp/space_shots/.
"""

import base64
import ctypes
import ctypes.util
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import tomllib
import torch
import yaml
from gradio_client import Client, handle_file
from PIL import Image

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.hub.cards import build_space_card
from c2f_testing import ON_GLIBC, save_tiny_sam, tiny_config

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "spaces_demo"
SHOTS = Path("/tmp/space_shots")
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
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
# Layout problems a visitor would see: the page scrolling sideways, text or buttons off screen, a block label
# under its component's buttons, a word broken over lines in a table cell.
LAYOUT_PROBLEMS_JS = r"""
(() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  const shown = (element) => element.offsetParent !== null && element.getClientRects().length > 0;
  const overlap = (a, b) =>
    a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const lines = (element) => {
    const tops = new Set();
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || !shown(node.parentElement)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) if (rect.width > 0) tops.add(Math.round(rect.top));
    }
    return tops.size;
  };
  const pageWidth = document.documentElement.scrollWidth;
  if (pageWidth > width + 1) problems.push(`page is ${pageWidth} px wide`);
  const texts = '[data-testid="block-label"], button, table, .caption, .legend span, h1, p';
  for (const element of document.querySelectorAll(texts)) {
    if (!shown(element)) continue;
    const box = element.getBoundingClientRect();
    const name = (element.innerText || element.tagName).trim().slice(0, 40);
    if (box.right > width + 1 || box.left < -1) problems.push(`off screen: ${name}`);
  }
  for (const cell of document.querySelectorAll('.cell-wrap')) {
    const words = cell.innerText.trim().split(/\s+/).filter(Boolean).length;
    if (shown(cell) && words && lines(cell) > words) problems.push(`word broken in a cell: ${cell.innerText.trim()}`);
  }
  for (const label of document.querySelectorAll('[data-testid="block-label"]')) {
    if (!shown(label)) continue;
    const block = label.closest('.block') || label.parentElement;
    for (const icons of block.querySelectorAll('.icon-button-wrapper')) {
      if (shown(icons) && overlap(label.getBoundingClientRect(), icons.getBoundingClientRect())) {
        problems.push(`label under buttons: ${label.innerText.trim()}`);
      }
    }
  }
  return problems;
})()
"""


def load_app(name: str, environment: dict[str, str]):
    """spaces_demo/app.py imported as module `name` with `environment` set while it is imported (the app reads
    its models' sources then)."""
    patch = pytest.MonkeyPatch()
    for variable in ("C2F_HF_SAM_MODEL", "C2F_HF_VIDEO_MODEL"):
        patch.delenv(variable, raising=False)
    for variable, value in environment.items():
        patch.setenv(variable, value)
    spec = importlib.util.spec_from_file_location(name, DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        patch.undo()
    return module


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random tiny C2F-Seg model whose default K is 2 and processor threshold 0.4."""
    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    C2FSegForAmodalSegmentation(tiny_config(num_sampling_steps=2)).save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=64, mask_threshold=0.4).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def app(tiny_model):
    """The app as the default Space runs it (no SAM), on the tiny model; the video tab uses the shipped model."""
    module = load_app("spaces_demo_app", {"C2F_HF_MODEL": str(tiny_model)})
    yield module
    sys.modules.pop("spaces_demo_app", None)


@pytest.fixture(scope="module")
def sam_app(tiny_model, tmp_path_factory):
    """The app with a tiny random SAM model configured (`C2F_HF_SAM_MODEL`)."""
    sam = save_tiny_sam(tmp_path_factory.mktemp("tiny_sam"))
    module = load_app("spaces_demo_sam_app", {"C2F_HF_MODEL": str(tiny_model), "C2F_HF_SAM_MODEL": str(sam)})
    yield module
    sys.modules.pop("spaces_demo_sam_app", None)


def launched(module) -> str:
    """Launch `module`'s app on 127.0.0.1 at a free port; returns its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, url, _ = module.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return url


@pytest.fixture(scope="module")
def server(app):
    url = launched(app)
    yield url
    app.demo.close()


@pytest.fixture(scope="module")
def sam_server(sam_app):
    url = launched(sam_app)
    yield url
    sam_app.demo.close()


def example_value(name: str) -> dict:
    """The editor value of a shipped example as gr.ImageMask hands it to the handler (RGBA arrays)."""
    background = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}.png").convert("RGBA"))
    layer = np.asarray(Image.open(DEMO_DIR / "examples" / f"{name}_mask.png").convert("RGBA"))
    return {"background": background, "layers": [layer], "composite": background}


def video_example(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames strip `(H, 8 W, 3)`, colour mask strip `(H, 8 W, 3)`) of a shipped video example, as gr.Image
    hands them over."""
    folder = DEMO_DIR / "examples" / "video"
    frames = np.asarray(Image.open(folder / f"{name}_frames.png").convert("RGB"))
    return frames, np.asarray(Image.open(folder / f"{name}_masks.png").convert("RGB"))


# ---- functions -----------------------------------------------------------------------------------------------------


def test_examples_are_small_pairs_whose_thumbnails_show_their_masks(app):
    rows = app.example_rows()
    assert len(rows) == 5
    total = sum(path.stat().st_size for path in (DEMO_DIR / "examples").rglob("*.png"))
    assert total < 500_000, f"examples take {total} bytes"
    for (editor_value,) in rows:
        image, layer = editor_value["background"], editor_value["layers"][0]
        painted = layer[..., 3] > 0
        assert layer.shape[:2] == image.shape[:2] and painted.any()
        assert not np.array_equal(editor_value["composite"][painted], image[painted])
        assert np.array_equal(editor_value["composite"][~painted], image[~painted])


def test_controls_and_examples_start_at_the_models_defaults(app):
    sliders = {block.label: block.value for block in app.demo.blocks.values() if isinstance(block, gr.Slider)}
    assert sliders == {"MaskGIT steps K": 2, "Mask threshold": 0.4}
    outputs = app.example_result(example_value("synthetic_3"))
    assert outputs[4:7] == (2, 0, 0.4)
    assert "Done: 2 objects" in outputs[-1]


def test_two_colours_give_two_numbered_objects_and_the_outputs(app):
    output = app.run_demo(example_value("photo_mug_behind_box"), 2, 0, 0.4)
    assert output.numbers == [1, 2] and [row[0] for row in output.rows] == [1, 2]
    for image in (output.image, output.overlay, output.coarse, output.refined):
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert output.notes == []


def test_table_columns_agree(app):
    output = app.run_demo(example_value("photo_ball_behind_books"), 2, 0, 0.4)
    for _, visible, hidden, amodal, rate, score in output.rows:
        assert amodal == visible + hidden and visible > 0
        assert rate == pytest.approx(100.0 * hidden / amodal, abs=0.05)
        assert 0.0 <= score <= 1.0


def test_seeded_runs_are_reproducible(app):
    first = app.run_demo(example_value("synthetic_3"), 2, 7, 0.5)
    second = app.run_demo(example_value("synthetic_3"), 2, 7, 0.5)
    assert np.array_equal(first.refined, second.refined) and first.rows == second.rows


def test_overlay_tints_visible_hatches_hidden_and_outlines_in_the_objects_colour(app):
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    visible = np.zeros((64, 64), dtype=bool)
    visible[8:24, 8:40] = True
    amodal = visible.copy()
    amodal[24:48, 8:40] = True
    overlay = app.draw_amodal_overlay(image, [visible], [amodal], [(0, 191, 255)], numbers=False).astype(int)
    inside_visible, inside_hidden = overlay[12:20, 12:36], overlay[28:44, 12:36]
    assert (inside_visible[..., 2] > inside_visible[..., 0]).all()
    assert len({tuple(pixel) for pixel in inside_hidden.reshape(-1, 3)}) == 2, "hatching: stripes of two colours"
    assert inside_hidden.max() > inside_visible.max() and inside_hidden.min() < inside_visible.min()
    assert tuple(overlay[47, 20]) == (0, 191, 255)
    assert (overlay[56:, 50:] < 128).all(), "the background is dimmed so the masks stand out"


def test_a_mistake_is_one_log_line_and_a_status_message_not_error_badges(app, caplog):
    value = example_value("synthetic_3")
    no_mask = {**value, "layers": [np.zeros_like(value["layers"][0])]}
    with caplog.at_level(logging.INFO, logger="c2f_seg_space"):
        result, coarse, refined, table, status = app.predict(no_mask, 2, 0, 0.5)
    assert (result, coarse, refined, table) == (None, None, None, None)
    assert "No visible mask" in status
    assert [(record.levelname, record.exc_info) for record in caplog.records] == [("WARNING", None)]
    assert "No image" in app.predict(None, 2, 0, 0.5)[-1]
    value["layers"][0] = np.zeros_like(value["layers"][0])
    value["layers"][0][0, 0] = (255, 0, 255, 255)
    assert "too small" in app.predict(value, 2, 0, 0.5)[-1]


def test_grayscale_image_is_used_with_a_note(app):
    value = example_value("synthetic_3")
    gray = np.asarray(Image.fromarray(value["background"]).convert("L").convert("RGBA"))
    output = app.run_demo({**value, "background": gray}, 2, 0, 0.5)
    assert len(output.rows) >= 1 and any("Grayscale image" in note for note in output.notes)


def test_a_huge_upload_is_downscaled_at_once_with_a_brush_to_match(app):
    value = example_value("photo_ball_behind_books")
    big = np.asarray(Image.fromarray(value["background"]).resize((3200, 2400)))
    prompt_image, image, editor, prompts, status = app.load_image(big, None)
    assert image.shape == (768, 1024, 3) and prompt_image.shape == image.shape
    assert "3200x2400 pixels scaled down to 1024x768" in status
    assert editor["value"]["background"].shape[:2] == (768, 1024)
    assert editor["brush"].default_size == app.brush_size((768, 1024)) == 13
    assert app.load_image(image, image) == (gr.skip(),) * 5, "the app setting its own image is no new upload"
    painted = {"background": big, "layers": [np.asarray(Image.fromarray(value["layers"][0]).resize((3200, 2400)))]}
    output = app.run_demo(painted, 2, 0, 0.5)
    assert output.overlay.shape == (768, 1024, 3) and any("scaled down" in note for note in output.notes)


def test_sam_clicks_and_boxes_make_numbered_objects_in_the_editor(sam_app):
    image = np.asarray(Image.open(DEMO_DIR / "examples" / "photo_ball_behind_books.png").convert("RGB"))
    _, image, editor, prompts, _ = sam_app.load_image(image, None)
    event = type("Click", (), {"index": (190, 110)})()
    prompt_image, editor, prompts, status = sam_app.click_prompt(
        image, prompts, "point on the object", editor["value"], event
    )
    assert "SAM mask of" in status and prompt_image.shape == image.shape
    first = sam_app.masks_from_layer(editor["value"]["layers"][0])
    assert list(first) == [1] and first[1].any()
    prompts, status = sam_app.next_object(prompts, editor["value"])
    assert prompts["current"] == 2 and "click on it" in status
    box_mode = sam_app.CLICK_MODES[2]
    for corner in ((40, 150), (120, 200)):
        event.index = corner
        _, editor, prompts, status = sam_app.click_prompt(image, prompts, box_mode, editor["value"], event)
    assert prompts["objects"]["2"]["box"] == [40, 150, 121, 201] and "SAM mask of" in status
    output = sam_app.run_demo(editor["value"], 2, 0, 0.5)
    assert output.numbers == sorted(sam_app.masks_from_layer(editor["value"]["layers"][0]))


def test_video_examples_are_colour_strips_with_a_fully_hidden_object(app):
    rows = app.video_example_rows()
    assert len(rows) == 3
    for _, frames_path, masks_path, num_frames, *_ in rows:
        frames, strip = np.asarray(Image.open(frames_path)), np.asarray(Image.open(masks_path).convert("RGB"))
        assert frames.shape == (128, 128 * num_frames, 3) and strip.shape == frames.shape
        assert strip.max(axis=-1).max() == 255, "a person can see the masks"
        labels = app.labels_from_mask_strip(strip)
        assert sorted(np.unique(labels)) == [0, 1, 2, 3]
        per_frame = labels.reshape(128, num_frames, 128).transpose(1, 0, 2)
        assert any(not (per_frame[frame] == 1).any() for frame in range(num_frames))
        assert np.array_equal(app.labels_from_mask_strip(labels.astype(np.uint8)), labels), "grayscale labels too"


def test_video_example_gives_one_overlay_per_frame_and_a_table(app):
    frames, strip = video_example("clip_3")
    output = app.run_video_demo(None, frames, strip, 8, 0, False)
    assert len(output.overlays) == 8
    assert all(overlay.shape == (128, 128, 3) and overlay.dtype == np.uint8 for overlay in output.overlays)
    assert [row[:2] for row in output.rows[:2]] == [[1, 0], [1, 1]] and len(output.rows) == 3 * 8
    for _, _, visible, hidden, amodal, rate, _ in output.rows:
        assert amodal == visible + hidden and 0.0 <= rate <= 100.0
    gallery, table, status = app.predict_video(None, frames, strip, 8, 0, True)
    assert [caption for _, caption in gallery] == [f"frame {frame}" for frame in range(8)]
    assert len(table) == 24 and "3 objects" in status and "over 8 frames" in status


def test_an_animated_gif_is_a_clip(app, tmp_path):
    frames, strip = video_example("clip_6")
    pictures = [Image.fromarray(frames[:, index * 128 : (index + 1) * 128]) for index in range(8)]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100)
    gallery, table, status = app.predict_video(str(tmp_path / "clip.gif"), None, strip, 1, 0, True)
    assert len(gallery) == 8 and len(table) == 24, status
    _, _, status = app.predict_video(str(tmp_path / "clip.gif"), None, strip[:, :512], 1, 0, True)
    assert "need a 1024x128 strip" in status


def test_video_mistakes_are_status_messages(app):
    frames, strip = video_example("clip_3")
    assert "does not split into 7 frames" in app.predict_video(None, frames, strip, 7, 0, False)[-1]
    assert "No clip" in app.predict_video(None, None, strip, 8, 0, False)[-1]
    assert "mask strip is empty" in app.predict_video(None, frames, np.zeros_like(strip), 8, 0, False)[-1]
    assert app.predict_video(None, None, strip, 8, 0, False)[:2] == (None, None)


def test_space_readme_front_matter_matches_the_card_builder():
    readme = (DEMO_DIR / "README.md").read_text()
    front_matter = yaml.safe_load(readme.split("---\n")[1])
    assert front_matter["sdk"] == "gradio" and front_matter["app_file"] == "app.py"
    assert front_matter["sdk_version"].split(".")[0] == gr.__version__.split(".")[0]
    assert 0 < len(front_matter["short_description"]) <= 60
    assert set(front_matter["preload_from_hub"]) == set(front_matter["models"])
    card = build_space_card(
        front_matter["title"],
        front_matter["models"],
        front_matter["sdk_version"],
        front_matter["short_description"],
        front_matter["preload_from_hub"],
    )
    assert readme.strip() == str(card).strip()
    for variable in ("C2F_HF_MODEL", "C2F_HF_SAM_MODEL", "C2F_HF_VIDEO_MODEL"):
        assert variable in readme


def test_requirements_name_every_dependency_and_the_built_space_imports_its_own_package(tmp_path):
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirements = [
        line.strip() for line in (DEMO_DIR / "requirements.txt").read_text().splitlines() if line.strip()[:1].isalnum()
    ]
    assert sorted(requirements) == sorted(dependencies)
    subprocess.run([sys.executable, str(DEMO_DIR / "build_space.py"), str(tmp_path / "space")], check=True)
    assert (tmp_path / "space" / "c2f_hf" / "pipeline_video_amodal_segmentation.py").is_file()
    assert not list((tmp_path / "space").rglob("__pycache__"))
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import c2f_hf, c2f_hf.checkpoints as c; print(c2f_hf.__file__, c.default_video_model_path())",
        ],
        cwd=tmp_path / "space",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(tmp_path / "space") for path in found), found


# ---- launched app ----------------------------------------------------------------------------------------------------


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


# ---- browser -------------------------------------------------------------------------------------------------------


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

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        """The viewport, or with `full_page` the whole page, as a PNG at `path`."""
        options = {}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            options = {"captureBeyondViewport": True, "clip": clip}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png", **options)["data"]))

    def set_viewport(self, width: int, height: int) -> None:
        """Lay the page out as a `width` x `height` screen (a phone below 600 px)."""
        self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=width < 600
        )

    def click_at(self, selector: str, x_fraction: float, y_fraction: float) -> None:
        """A real mouse click at a fraction of the first `selector` element's box."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height]; })()"
        )
        x, y = box[0] + box[2] * x_fraction, box[1] + box[3] * y_fraction
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def upload(self, selector: str, path: Path) -> None:
        """Put file `path` into the file input `selector`, as a user choosing it does."""
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.send("DOM.setFileInputFiles", files=[str(path)], nodeId=node)

    def in_viewport(self, selector: str) -> bool:
        """Whether the first `selector` element is shown and at least half of it lies in the viewport."""
        return self.evaluate(
            f"(() => {{ const e = document.querySelector({selector!r}); if (!e || !e.offsetParent) return false;"
            " const r = e.getBoundingClientRect(); const seen = Math.min(r.bottom, innerHeight) - Math.max(r.top, 0);"
            " return r.height > 0 && seen >= r.height / 2; })()"
        )

    def text(self, selector: str) -> str:
        return self.evaluate(f"(document.querySelector({selector!r}) || {{}}).innerText || ''")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def _click_example(browser: DevToolsPipe, index: int) -> None:
    browser.evaluate(f"document.querySelectorAll('#image_tab button.gallery-item')[{index}].click()")


@needs_chromium
def test_browser_first_visit_a_mistake_and_an_example_at_desktop_and_phone_widths(server, tmp_path):
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelectorAll('#image_tab button.gallery-item').length >= 5")
        time.sleep(1.0)
        header = browser.evaluate("[...document.querySelectorAll('#header a')].map(a => a.href)")
        desktop_problems = browser.evaluate(LAYOUT_PROBLEMS_JS)
        examples_in_view = browser.in_viewport("#image_tab button.gallery-item")
        browser.screenshot(SHOTS / "first_visit_1280x800.png")
        browser.set_viewport(390, 844)
        time.sleep(1.0)
        phone_problems = browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / "first_visit_390x844.png", full_page=True)
        browser.evaluate("document.querySelector('#segment').click()")
        browser.wait_for("document.querySelector('#status').innerText.includes('No image')")
        time.sleep(15.0)
        mistake = browser.text("#status")
        badges = browser.evaluate("[...document.querySelectorAll('.error')].filter(e => e.offsetParent).length")
        browser.screenshot(SHOTS / "mistake_after_15s_390x844.png")
        _click_example(browser, 1)
        browser.wait_for("document.querySelector('#status').innerText.includes('Done')")
        browser.wait_for("document.querySelectorAll('#result img').length >= 1")
        time.sleep(1.0)
        result_in_view = browser.in_viewport("#result")
        result_problems = browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / "example_result_390x844.png")
        browser.screenshot(SHOTS / "example_result_390x844_full.png", full_page=True)
        browser.set_viewport(1280, 800)
        browser.evaluate("window.scrollTo(0, 0)")
        time.sleep(1.0)
        browser.screenshot(SHOTS / "example_result_1280x800.png")
        table = browser.text("#objects")
    finally:
        browser.close()
    assert "https://arxiv.org/abs/2308.16825" in header and "https://github.com/amazon-science/c2f-seg" in header
    assert desktop_problems == [] and phone_problems == [], (desktop_problems, phone_problems)
    assert examples_in_view, "the examples must be on the first screen at 1280x800"
    assert "No image" in mistake and badges == 0
    assert result_in_view and result_problems == [], result_problems
    assert "visible" in table and "occl. %" in table


@needs_chromium
def test_browser_upload_click_with_sam_and_segment(sam_server, tmp_path):
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=sam_server)
        browser.wait_for("document.querySelector('#prompt_image input[type=file]') !== null")
        browser.upload("#prompt_image input[type=file]", DEMO_DIR / "examples" / "photo_ball_behind_books.png")
        browser.wait_for("document.querySelector('#status').innerText.includes('Image loaded')")
        browser.wait_for("document.querySelector('#prompt_image img') !== null")
        time.sleep(0.5)
        browser.click_at("#prompt_image img", 0.6, 0.45)
        browser.wait_for("document.querySelector('#status').innerText.includes('SAM mask of')")
        browser.screenshot(SHOTS / "sam_prompt_1280x800.png")
        browser.evaluate("document.querySelector('#segment').click()")
        browser.wait_for("document.querySelector('#status').innerText.includes('Done')")
        browser.wait_for("document.querySelectorAll('#result img').length >= 1")
        time.sleep(1.0)
        status = browser.text("#status")
        result_in_view = browser.in_viewport("#result")
        browser.screenshot(SHOTS / "sam_result_1280x800.png")
    finally:
        browser.close()
    assert "Done: 1 object" in status, status
    assert result_in_view
