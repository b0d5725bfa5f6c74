"""The Space in a real browser: Debian's /usr/bin/chromium, headless, driven over the Chrome DevTools Protocol on
a pipe (`--remote-debugging-pipe`: NUL-terminated JSON on file descriptors 3 and 4), so no extra package is
needed. Two apps are launched: `server` as the default Space runs (painting, no SAM) and `sam_server` with a tiny
random SAM model configured. Screenshots go to /tmp/space_shots/.
"""

import base64
import io
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaces_demo_testing import DEMO_DIR

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
        self.events: list[dict] = []
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
            if "method" in reply:
                self.events.append(reply)
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

    def click_image_pixel(self, selector: str, x: int, y: int) -> None:
        """A real mouse click on pixel `(x, y)` of the first `selector` image as drawn: centred in its box and
        shown at most at its own size, as gradio's image places it (and maps a click back to a pixel)."""
        point = self.evaluate(
            f"(() => {{ const image = document.querySelector({selector!r}); const r = image.getBoundingClientRect();"
            " const scale = Math.min(r.width / image.naturalWidth, r.height / image.naturalHeight, 1);"
            " const left = r.x + (r.width - image.naturalWidth * scale) / 2;"
            " const top = r.y + (r.height - image.naturalHeight * scale) / 2;"
            f" return [left + ({x} + 0.5) * scale, top + ({y} + 0.5) * scale]; }})()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=point[0], y=point[1], button="left", clickCount=1)

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

    def requests_to(self, path: str) -> int:
        """How many requests whose URL contains `path` the page sent since the last `Network.enable` or
        `forget_requests` (events read so far: call after a `wait_for`)."""
        self.evaluate("0")
        return sum(
            path in event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        )

    def forget_requests(self) -> None:
        self.evaluate("0")
        self.events.clear()

    def count_requests_from_now(self) -> None:
        """Record the page's requests from here on (`requests_to` counts them), forgetting those before: network
        events on, a moment for the ones already in flight, then the slate cleared."""
        self.send("Network.enable")
        time.sleep(0.5)
        self.forget_requests()

    def paint(self, selector: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        """A mouse stroke from `start` to `end`, fractions of the first `selector` element's box."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height]; })()"
        )
        points = [
            (
                box[0] + box[2] * (start[0] + (end[0] - start[0]) * step / 12),
                box[1] + box[3] * (start[1] + (end[1] - start[1]) * step / 12),
            )
            for step in range(13)
        ]
        for kind, (x, y), buttons in [
            ("mouseMoved", points[0], 0),
            ("mousePressed", points[0], 1),
            *(("mouseMoved", point, 1) for point in points[1:]),
            ("mouseReleased", points[-1], 0),
        ]:
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=buttons, clickCount=1)
            time.sleep(0.05)

    def image_pixels(self, selector: str) -> np.ndarray:
        """`(H, W, 3)` uint8: the pixels of the first `selector` image, fetched from its source."""
        source = self.evaluate(f"document.querySelector({selector!r}).src")
        with urllib.request.urlopen(source) as response:
            return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))

    def text(self, selector: str) -> str:
        return self.evaluate(f"(document.querySelector({selector!r}) || {{}}).innerText || ''")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


EXAMPLES = sorted(path.name.removesuffix("_mask.png") for path in (DEMO_DIR / "examples").glob("*_mask.png"))
UPLOAD_INPUT = "input[type=file]:has(+ #upload)"


def _click_example(browser: DevToolsPipe, index: int) -> None:
    browser.evaluate(f"document.querySelectorAll('#examples button.gallery-item')[{index}].click()")


def _wait_for_status(browser: DevToolsPipe, text: str, timeout: float = 60.0) -> None:
    browser.wait_for(f"document.querySelector('#status').innerText.includes({text!r})", timeout)


def _wait_for_result(browser: DevToolsPipe) -> None:
    """Until the status says Done, the result is drawn and the page has scrolled to it."""
    _wait_for_status(browser, "Done")
    browser.wait_for("document.querySelectorAll('#result img').length >= 2")
    time.sleep(1.0)


def _pick_colour(browser: DevToolsPipe, number: int) -> None:
    """Choose object `number`'s colour in the editor's brush menu."""
    browser.evaluate("document.querySelector('#editor button[aria-label=\"Color\"]').click()")
    browser.wait_for("document.querySelectorAll('#editor button.color').length >= 6")
    browser.evaluate(f"document.querySelectorAll('#editor button.color')[{number - 1}].click()")
    browser.click_at("#header", 0.9, 0.1)
    time.sleep(0.3)


@needs_chromium
def test_browser_an_example_is_one_request_and_stays_correct_when_edited(server, tmp_path):
    """Desktop: one click on an example is one queue job and shows the result in view; a stroke in a new colour
    adds an object and keeps the example's, and the model gets the example's clean photo; erasing the stroke
    removes that object only."""
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelectorAll('#examples button.gallery-item').length >= 5")
        browser.count_requests_from_now()
        _click_example(browser, EXAMPLES.index("photo_ball_behind_books"))
        _wait_for_result(browser)
        example_jobs, example_in_view = browser.requests_to("/queue/join"), browser.in_viewport("#result")
        handle = browser.evaluate("document.querySelector('#result .slider-wrap, #result [role=slider]') !== null")
        browser.evaluate("window.scrollTo(0, 0)")
        browser.wait_for("document.querySelector('#editor canvas') !== null")
        time.sleep(0.5)
        _pick_colour(browser, 3)
        browser.paint("#editor canvas", (0.25, 0.2), (0.4, 0.25))
        time.sleep(1.0)
        browser.forget_requests()
        browser.evaluate("document.querySelector('#segment').click()")
        browser.wait_for("!document.querySelector('#status').innerText.includes('Done: 2 objects')")
        _wait_for_result(browser)
        browser.screenshot(SHOTS / "edited_example_1280x800.png")
        status = browser.text("#status")
        segment_jobs, result_in_view = browser.requests_to("/queue/join"), browser.in_viewport("#result")
        before = browser.image_pixels("#result img")
        browser.screenshot(SHOTS / "edited_example_1280x800.png")
        browser.evaluate("window.scrollTo(0, 0)")
        browser.evaluate("document.querySelector('#editor button[aria-label=Erase]').click()")
        time.sleep(0.3)
        for offset in (-0.01, 0.0, 0.01):
            browser.paint("#editor canvas", (0.24, 0.2 + offset), (0.41, 0.25 + offset))
        time.sleep(1.0)
        browser.evaluate("document.querySelector('#segment').click()")
        browser.wait_for("!document.querySelector('#status').innerText.includes('Done: 3 objects')")
        _wait_for_status(browser, "Done")
        erased = browser.text("#status")
    finally:
        browser.close()
    photo = np.asarray(Image.open(DEMO_DIR / "examples" / "photo_ball_behind_books.png").convert("RGB"))
    assert example_jobs == 1 and segment_jobs == 1, (example_jobs, segment_jobs)
    assert example_in_view and result_in_view and handle
    assert "Done: 3 objects 1 2 3" in status, "the example's objects 1 and 2 kept, the stroke's 3 added"
    assert "Done: 2 objects 1 2" in erased, "erasing the stroke removes object 3 and keeps the example's"
    assert np.array_equal(before, photo), "the model gets the example's photo, not the masks drawn into it"


@needs_chromium
def test_browser_a_large_upload_is_scaled_down_before_the_editor_at_phone_width(server, tmp_path):
    """Phone: a 4000x3000 photo is one upload request, reaches the editor at 1024x768 with a note, and can be
    painted and segmented at once."""
    photo = tmp_path / "large.jpg"
    Image.open(DEMO_DIR / "examples" / "photo_mug_behind_box.png").convert("RGB").resize((4000, 3000)).save(photo)
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(390, 844)
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelector('#upload') !== null")
        browser.count_requests_from_now()
        start = time.monotonic()
        browser.upload(UPLOAD_INPUT, photo)
        _wait_for_status(browser, "Image loaded")
        browser.wait_for("document.querySelector('#editor canvas') !== null")
        loaded_seconds = time.monotonic() - start
        upload_jobs, status = browser.requests_to("/queue/join"), browser.text("#status")
        browser.evaluate("document.querySelector('#editor').scrollIntoView({block: 'center'})")
        time.sleep(1.0)
        browser.paint("#editor canvas", (0.45, 0.3), (0.6, 0.6))
        time.sleep(1.0)
        browser.evaluate("document.querySelector('#segment').click()")
        _wait_for_result(browser)
        done, result_in_view = browser.text("#status"), browser.in_viewport("#result")
        problems = browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / "large_upload_390x844.png")
    finally:
        browser.close()
    assert upload_jobs == 1 and loaded_seconds < 30, (upload_jobs, loaded_seconds)
    assert "4000x3000 pixels scaled down to 1024x768" in status and "Image loaded (1024x768)" in status
    assert "Done: 1 object" in done and result_in_view and problems == [], problems


@needs_chromium
def test_browser_first_visit_a_mistake_and_an_example_at_desktop_and_phone_widths(server, tmp_path):
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelectorAll('#examples button.gallery-item').length >= 5")
        time.sleep(1.0)
        header = browser.evaluate("[...document.querySelectorAll('#header a')].map(a => a.href)")
        desktop_problems = browser.evaluate(LAYOUT_PROBLEMS_JS)
        examples_in_view = browser.in_viewport("#examples button.gallery-item")
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
        browser.count_requests_from_now()
        _click_example(browser, EXAMPLES.index("photo_mug_behind_box"))
        _wait_for_result(browser)
        example_jobs = browser.requests_to("/queue/join")
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
    assert example_jobs == 1, f"one click on an example must be one request, not {example_jobs}"
    assert "visible" in table and "occl. %" in table


@needs_chromium
def test_browser_upload_click_with_sam_and_segment(sam_server, tmp_path):
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=sam_server)
        browser.wait_for("document.querySelectorAll('#examples button.gallery-item').length >= 5")
        examples_in_view = browser.in_viewport("#examples button.gallery-item")
        browser.upload(UPLOAD_INPUT, DEMO_DIR / "examples" / "photo_ball_behind_books.png")
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
    assert result_in_view and examples_in_view


@needs_chromium
def test_browser_a_video_example_is_one_request_with_a_readable_gallery_at_both_widths(server, tmp_path):
    """One click on an example clip is one queue job; the page scrolls to the per-frame gallery, whose frames are
    shown at least at their own size (128 px) at 1280x800 and at 390x844."""
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    frame_widths = (
        "[...document.querySelectorAll('#video_overlays img')].map((image) => image.getBoundingClientRect().width)"
    )
    try:
        browser.set_viewport(1280, 800)
        browser.send("Page.navigate", url=server)
        browser.wait_for("document.querySelector('#video_tab-button, button[role=tab]') !== null")
        browser.evaluate(
            "[...document.querySelectorAll('button[role=tab]')].find((tab) => tab.innerText.includes('Video')).click()"
        )
        browser.wait_for("document.querySelectorAll('#video_examples button').length >= 3")
        browser.count_requests_from_now()
        browser.evaluate("document.querySelectorAll('#video_examples button')[0].click()")
        browser.wait_for("document.querySelector('#video_status').innerText.includes('Done')", 120)
        browser.wait_for("document.querySelectorAll('#video_overlays img').length >= 8")
        time.sleep(1.5)
        jobs, gallery_in_view = browser.requests_to("/queue/join"), browser.in_viewport("#video_overlays img")
        desktop_widths, desktop_problems = browser.evaluate(frame_widths), browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / "video_example_1280x800.png")
        browser.set_viewport(390, 844)
        time.sleep(1.0)
        phone_widths, phone_problems = browser.evaluate(frame_widths), browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / "video_example_390x844.png", full_page=True)
    finally:
        browser.close()
    assert jobs == 1 and gallery_in_view, (jobs, gallery_in_view)
    assert len(desktop_widths) == 8 and min(desktop_widths) >= 128 and min(phone_widths) >= 128, (
        desktop_widths,
        phone_widths,
    )
    assert desktop_problems == [] and phone_problems == [], (desktop_problems, phone_problems)


def _open_video_tab(browser: DevToolsPipe, url: str, width: int, height: int) -> None:
    """A fresh page at `width` x `height` on the video tab, its example clips shown."""
    browser.set_viewport(width, height)
    browser.send("Page.navigate", url=url)
    browser.wait_for(
        "[...document.querySelectorAll('button[role=tab]')].some((tab) => tab.innerText.includes('Video'))"
    )
    browser.evaluate(
        "[...document.querySelectorAll('button[role=tab]')].find((tab) => tab.innerText.includes('Video')).click()"
    )
    browser.wait_for("document.querySelectorAll('#video_examples button').length >= 3")


def _wait_until_still(browser: DevToolsPipe, selector: str, timeout: float = 20.0) -> None:
    """Until the first `selector` element stays at the same place in the window for 0.5 s (a scroll has ended)."""
    place = f"JSON.stringify(document.querySelector({selector!r}).getBoundingClientRect())"
    deadline = time.monotonic() + timeout
    before = browser.evaluate(place)
    while True:
        time.sleep(0.5)
        now = browser.evaluate(place)
        if now == before or time.monotonic() > deadline:
            return
        before = now


def _load_video_example(browser: DevToolsPipe, index: int) -> None:
    """Click example clip `index` and wait until its result is drawn and the page has scrolled to it."""
    browser.evaluate(f"document.querySelectorAll('#video_examples button')[{index}].click()")
    _wait_for_video_status(browser, "Done", 120)
    browser.wait_for("document.querySelectorAll('#video_overlays img').length >= 8")
    browser.wait_for(
        "(() => { const r = document.querySelector('#video_overlays').getBoundingClientRect();"
        " return r.top < innerHeight / 2; })()"
    )
    _wait_until_still(browser, "#video_overlays")


def _show_first_frame(browser: DevToolsPipe) -> None:
    """Scroll the clip's first frame (to click on) to the middle of the window and wait until it stays there."""
    browser.wait_for("document.querySelector('#video_prompt_image img') !== null")
    browser.evaluate("document.querySelector('#video_prompt_image').scrollIntoView({block: 'center'})")
    _wait_until_still(browser, "#video_prompt_image img")


def _wait_for_video_status(browser: DevToolsPipe, text: str, timeout: float = 60.0) -> None:
    browser.wait_for(f"document.querySelector('#video_status').innerText.includes({text!r})", timeout)


@needs_chromium
@pytest.mark.parametrize(("width", "height", "clip_from"), [(1280, 800, "upload"), (390, 844, "example")])
def test_browser_click_objects_on_the_first_frame_and_track_them_with_sam2(
    sam2_server, tmp_path, width, height, clip_from
):
    """With a tiny random SAM 2: a clip (an uploaded GIF on desktop, an example clip on a phone) shows its first
    frame; a click on each of two objects (Next object between them) and one press of Segment clip give one
    overlay per frame and one table row per object and frame, in view, with no layout problem."""
    frames = np.asarray(Image.open(DEMO_DIR / "examples" / "video" / "clip_3_frames.png").convert("RGB"))
    pictures = [Image.fromarray(frames[:, index * 128 : (index + 1) * 128]) for index in range(8)]
    pictures[0].save(tmp_path / "clip_3.gif", save_all=True, append_images=pictures[1:], duration=100)
    browser = DevToolsPipe(tmp_path / "chromium-profile")
    try:
        _open_video_tab(browser, sam2_server, width, height)
        if clip_from == "upload":
            browser.wait_for("document.querySelector('#clip_file input[type=file]') !== null")
            browser.upload("#clip_file input[type=file]", tmp_path / "clip_3.gif")
            _wait_for_video_status(browser, "Clip loaded: 8 frames of 128x128")
        else:
            _load_video_example(browser, 0)
        _show_first_frame(browser)
        browser.screenshot(SHOTS / f"video_first_frame_{width}x{height}.png")
        for number, (x, y) in enumerate([(64, 80), (48, 56)], start=1):
            if number > 1:
                browser.evaluate("document.querySelector('#video_next_object').click()")
                _wait_for_video_status(browser, "Object 2")
            browser.click_image_pixel("#video_prompt_image img", 2 * x + 1, 2 * y + 1)  # shown twice its size
            _wait_for_video_status(browser, "1 point")
        browser.screenshot(SHOTS / f"video_clicks_{width}x{height}.png")
        browser.count_requests_from_now()
        browser.evaluate("document.querySelector('#segment_video').click()")
        _wait_for_video_status(browser, "tracked by SAM 2", 120)
        browser.wait_for("document.querySelectorAll('#video_overlays img').length >= 8")
        time.sleep(1.5)
        jobs, status = browser.requests_to("/queue/join"), browser.text("#video_status")
        overlays = browser.evaluate("document.querySelectorAll('#video_overlays img').length")
        table = browser.text("#tracks")
        gallery_in_view, problems = browser.in_viewport("#video_overlays img"), browser.evaluate(LAYOUT_PROBLEMS_JS)
        browser.screenshot(SHOTS / f"video_sam2_result_{width}x{height}.png")
        browser.screenshot(SHOTS / f"video_sam2_result_{width}x{height}_full.png", full_page=True)
    finally:
        browser.close()
    assert jobs == 1 and "Done: 2 objects" in status and "over 8 frames" in status, (jobs, status)
    assert overlays == 8 and gallery_in_view and problems == [], (overlays, gallery_in_view, problems)
    cells = table.split("score", 1)[1].split()
    rows = [cells[start : start + 7] for start in range(0, len(cells), 7)]
    assert [row[:2] for row in rows] == [[str(number), str(frame)] for number in (1, 2) for frame in range(8)], table
