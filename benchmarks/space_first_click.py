"""Seconds from a visitor's first click on each example of the Space to its result drawn, in headless Chromium.

Starts the Space (`spaces_demo/app.py`) with the models it would serve (`C2F_HF_MODEL` or the shipped one), then
for each window size and example opens a fresh page, clicks the example and waits until the status says "Done"
and the result slider holds both images. Prints, per click, the seconds, the queue jobs the click sent
(`/gradio_api/queue/join` requests; the target is one), whether the result is in view, and the status line. The
browser driver is the one of the Space's browser tests (`tests/spaces_demo/test_browser.py`, Debian's
`/usr/bin/chromium`). Run it from the repository root:

    HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False python benchmarks/space_first_click.py --threads 2
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
sys.path[:0] = [str(ROOT / "spaces_demo"), str(ROOT / "tests" / "spaces_demo")]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print_machine(machine_description(torch.device("cpu")))
    sources = ModelSources()
    demo = build_demo(sources)
    sources.segmenter()
    _, url, _ = launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with tempfile.TemporaryDirectory() as profiles:
            for width, height in WINDOW_SIZES:
                for index, name in enumerate(browser_tests.EXAMPLES):
                    profile = Path(profiles) / f"{width}_{index}"
                    print(f"{width}x{height} {name}: {first_click(url, width, height, index, profile)}", flush=True)
    finally:
        demo.close()


if __name__ == "__main__":
    main()
