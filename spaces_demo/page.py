"""What the page shows besides its components: the header, help texts, legend, CSS and script, the object chips,
and the message a user's mistake puts in the status area (`DemoInputError`, `problem`)."""

from __future__ import annotations

import logging

from c2f_hf.visualization import OBJECT_COLOURS

logger = logging.getLogger("c2f_seg_space")

PAPER_URL = "https://arxiv.org/abs/2308.16825"
AUTHORS_CODE_URL = "https://github.com/amazon-science/c2f-seg"
TABLE_HELP = (
    "**#**: the object's number and colour; areas in pixels. **visible**: the visible mask given (painted, from "
    "SAM or an example); **hidden**: the pixels the model adds (its prediction of the hidden part); **amodal** = "
    "visible + hidden, the whole shape; **occl. %** = hidden / amodal; **score**: the model's mean token confidence "
    "(0 to 1), not a measured accuracy."
)
LEGEND_HTML = """
<div class="legend">
  <span><i class="swatch tint"></i>visible part (input): light tint</span>
  <span><i class="swatch hatch"></i>hidden part (predicted): hatched</span>
  <span><i class="swatch outline"></i>outline: whole predicted shape</span>
  <span>colour: one object (its number in the status and the table)</span>
</div>
"""
CSS = """
.legend {display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.9em; margin: 4px 0;}
.legend .swatch {display: inline-block; width: 1.1em; height: 1.1em; margin-right: 5px; vertical-align: -0.2em;
  border: 2px solid #ff00ff; box-sizing: border-box;}
.legend .tint {background: rgba(255, 0, 255, 0.35);}
.legend .hatch {background: repeating-linear-gradient(45deg, #ff00ff 0 3px, #222 3px 6px);}
.legend .outline {background: transparent;}
.chip {display: inline-block; padding: 0 6px; margin: 1px 2px; border-radius: 4px; color: #000; font-weight: 600;
  border: 1px solid #555;}
#status {min-height: 2.5em;}
.caption p {margin: 0 !important;}
#video_overlays .grid-wrap {height: auto !important; max-height: none !important;}
#video_overlays .grid-container {grid-template-columns: repeat(4, minmax(0, 1fr)) !important;}
@media (max-width: 600px) {
  #video_overlays .grid-container {grid-template-columns: repeat(2, minmax(0, 1fr)) !important;}
  #objects th, #objects td, #tracks th, #tracks td {padding: 2px 3px !important;}
  #objects .cell-wrap, #tracks .cell-wrap {padding: 2px !important;}
  #objects th *, #objects .cell-wrap *, #tracks th *, #tracks .cell-wrap * {font-size: 11px !important;}
}
.problem {background: #fff3cd; color: #5c4400; border-left: 4px solid #e0a800; padding: 6px 10px; border-radius: 4px;}
"""


class DemoInputError(ValueError):
    """Bad input, with a message meant for the user."""


def problem(message: str) -> str:
    """Log a user's mistake as one line and return it as status Markdown."""
    logger.warning("input problem: %s", message)
    return f'<div class="problem">⚠ {message}</div>'


def scroll_into_view_js(selector: str, block: str = "center") -> str:
    """Browser code to run once a result has arrived: wait (at most 2 s) until an image under the `selector`
    element is drawn, so that its height is known, then scroll it into view (`block`: where in the window, as
    `scrollIntoView` takes it)."""
    return f"""
async () => {{
  const result = document.querySelector({selector!r});
  if (!result) return;
  const drawn = () => [...result.querySelectorAll('img')].some((image) => image.complete && image.naturalWidth);
  for (let tries = 0; tries < 40 && !drawn(); tries++) await new Promise((resolve) => setTimeout(resolve, 50));
  result.scrollIntoView({{behavior: 'smooth', block: {block!r}}});
}}
"""


def hex_colour(colour: tuple[int, int, int]) -> str:
    """`(r, g, b)` -> `"#rrggbb"`."""
    return "#{:02x}{:02x}{:02x}".format(*colour)


def object_chip(number: int) -> str:
    """HTML: "object `number`" on a background of its colour."""
    return f'<span class="chip" style="background:{hex_colour(OBJECT_COLOURS[number - 1][1])}">{number}</span>'


def palette_chips() -> str:
    """The chips of every object number of the palette, in order."""
    return " ".join(object_chip(number) for number in range(1, len(OBJECT_COLOURS) + 1))


def header_markdown(model_card_url: str, sam: bool) -> str:
    """What the page is, how to give a visible mask (clicking needs a SAM model: `sam`), where it comes from (with
    the image model's card at `model_card_url`) and how far to trust it."""
    how = "click it, paint it" if sam else "paint it"
    return f"""
# C2F-Seg: see the hidden part of objects
Give the **visible** part of an object ({how}, or pick an example) and the model predicts its **whole** shape,
the hidden part included (*amodal segmentation*).
[Paper (Gao et al., ICCV 2023)]({PAPER_URL}) · [model card]({model_card_url}) ·
[authors' code]({AUTHORS_CODE_URL}) · this demo: the `c2f_hf` transformers package.

**How far to trust it:** the default model is small (1.7 M parameters) and was trained on **synthetic shapes
only** (discs, rectangles, stars, ... drawn over generated backgrounds). Its masks on real photos have not been
measured: treat them as rough guesses.
"""


def sam_help(sam_source: str | None) -> str:
    """The line above the image tab's prompt controls: how to click (SAM model `sam_source`), or why clicking is
    off (None)."""
    if sam_source:
        return (
            f"**1. Click** an object (SAM: `{sam_source}`) or draw a box with two clicks; one object per "
            "prompt, numbered in colour. **2. Correct** in the editor below if needed. **3. Segment.**"
        )
    return (
        "**Paint** the visible part of each object in the editor; **one colour = one object** (pick the next "
        "colour in the brush menu for the next object), then **Segment**. Click prompting needs a SAM model: this "
        "Space has none configured (`C2F_HF_SAM_MODEL`)."
    )


def video_help(max_frames: int, sam2_source: str | None) -> str:
    """The video tab's introduction: what it does and the clips it takes (at most `max_frames` frames): with SAM 2
    (`sam2_source`) objects clicked on the first frame, else (None) a mask strip of every frame's visible masks."""
    strips = (
        f"a **mask strip** of the same layout: each object's visible part painted in its colour {palette_chips()} "
        "on black (a grayscale strip with value k for object k works too)"
    )
    vanish = (
        "An object may vanish for some frames; a frame a whole model window or more away from every frame where it "
        "is visible is not completed (its masks come back empty)."
    )
    if sam2_source:
        return f"""
Track objects through a short clip and see each one's **whole** shape in every frame. **1. Upload** an animated
**GIF / APNG / WebP** (at most {max_frames} frames) or click an example clip. **2. Click each object** on the first
frame (SAM 2: `{sam2_source}` tracks it through the clip; **Next object** for the next one, one colour each).
**3. Segment clip.** Instead of clicks, film strips work too: the frames side by side (PNG) and {strips}. {vanish}
"""
    return f"""
Track objects through a short clip: the video model predicts each object's **whole** shape in every frame. Give
the clip as a **film strip** (frames side by side, PNG) or an **animated GIF / APNG / WebP** (at most
{max_frames} frames), and {strips}. This Space has no video tracker configured (`C2F_HF_SAM2_MODEL`), so
clicks on the first frame cannot be carried through the clip: every frame needs its masks. {vanish}
"""
