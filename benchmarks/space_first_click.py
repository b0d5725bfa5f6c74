"""Seconds from a visitor's first click on each example of the Space to its result drawn, in headless Chromium.

Starts the Space (`spaces_demo/app.py`) with the models it would serve (`C2F_HF_MODEL` or the shipped one), then
for each window size and example opens a fresh page, clicks the example and waits until the status says "Done"
and the result slider holds both images. Prints, per click, the seconds, the queue jobs the click sent
(`/gradio_api/queue/join` requests; the target is one), whether the result is in view, and the status line. The
browser driver is the one of the Space's browser tests (`tests/spaces_demo/test_browser.py`, Debian's
`/usr/bin/chromium`). Run it from the repository root:

    HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False python benchmarks/space_first_click.py --threads 2

With `--video-clicks` it measures the video tab's SAM 2 path instead, with the tiny random SAM 2 of the tests
(`tests/c2f_testing.py`'s `save_tiny_sam2`; needs torchvision): per window size, a fresh page loads the first
example clip, clicks one object on its first frame, and times the press of **Segment clip** until the status says
it was tracked and the 8 overlays are drawn (the status also gives the seconds the pipeline took on the server).
"""

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import machine_description, print_machine

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "spaces_demo"), str(ROOT / "tests" / "spaces_demo"), str(ROOT / "tests")]

import test_browser as browser_tests  # noqa: E402
from app import build_demo, launch  # noqa: E402
from segmenters import ModelSources  # noqa: E402

WINDOW_SIZES = ((1280, 800), (390, 844))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_click(url: str, width: int, height: int, index: int, profile: Path) -> str:
    """One fresh page at `width` x `height`: click example `index` and describe how its result arrived."""
    browser = browser_tests.DevToolsPipe(profile)
    try:
        browser.set_viewport(width, height)
        browser.send("Page.navigate", url=url)
        browser.wait_for(f"document.querySelectorAll('#examples button.gallery-item').length > {index}")
        browser.count_requests_from_now()
        start = time.monotonic()
        browser_tests._click_example(browser, index)
        browser.wait_for("document.querySelector('#status').innerText.includes('Done')", 120)
        browser.wait_for("document.querySelectorAll('#result img').length >= 2")
        seconds = time.monotonic() - start
        time.sleep(1.5)
        status = browser.text("#status").splitlines()[0][:60]
        return (
            f"{seconds:.2f} s to the result, {browser.requests_to('/queue/join')} queue job(s), "
            f"in view {browser.in_viewport('#result')}, status: {status}"
        )
    finally:
        browser.close()


def video_click_to_result(url: str, width: int, height: int, profile: Path) -> str:
    """One fresh page at `width` x `height`: load the first example clip, click one object on its first frame
    (shown twice its size), press Segment clip and describe how the tracked result arrived."""
    browser = browser_tests.DevToolsPipe(profile)
    try:
        browser_tests._open_video_tab(browser, url, width, height)
        browser_tests._load_video_example(browser, 0)
        browser_tests._show_first_frame(browser)
        browser.click_image_pixel("#video_prompt_image img", 2 * 64 + 1, 2 * 80 + 1)
        browser_tests._wait_for_video_status(browser, "1 point")
        browser.count_requests_from_now()
        start = time.monotonic()
        browser.evaluate("document.querySelector('#segment_video').click()")
        browser_tests._wait_for_video_status(browser, "tracked by SAM 2", 120)
        browser.wait_for("[...document.querySelectorAll('#video_overlays img')].filter((i) => i.complete).length >= 8")
        seconds = time.monotonic() - start
        time.sleep(1.5)
        status = browser.text("#video_status").splitlines()[0][:90]
        return (
            f"{seconds:.2f} s to the result, {browser.requests_to('/queue/join')} queue job(s), "
            f"in view {browser.in_viewport('#video_overlays img')}, status: {status}"
        )
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--video-clicks", action="store_true", help="time the video tab's SAM 2 path instead")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print_machine(machine_description(torch.device("cpu")))
    with tempfile.TemporaryDirectory() as folder:
        sources = ModelSources()
        if arguments.video_clicks:
            from c2f_testing import save_tiny_sam2

            sources = ModelSources(sam2=str(save_tiny_sam2(Path(folder) / "tiny_sam2")))
        demo = build_demo(sources)
        if arguments.video_clicks:
            sources.video_segmenter()
        else:
            sources.segmenter()
        _, url, _ = launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            for width, height in WINDOW_SIZES:
                if arguments.video_clicks:
                    outcome = video_click_to_result(url, width, height, Path(folder) / f"{width}_video")
                    print(f"{width}x{height} clip_3, one click: {outcome}", flush=True)
                    continue
                for index, name in enumerate(browser_tests.EXAMPLES):
                    outcome = first_click(url, width, height, index, Path(folder) / f"{width}_{index}")
                    print(f"{width}x{height} {name}: {outcome}", flush=True)
        finally:
            demo.close()


if __name__ == "__main__":
    main()
