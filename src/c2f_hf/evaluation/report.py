"""The evaluation report: `metrics.json`, a Markdown table (`format_markdown`) and a per-bin bar chart drawn with
PIL (`draw_per_bin_chart`), written together by `write_report`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .accumulator import EvaluationResults
from .coco import COCO_STATS_INDEX
from .metrics import bin_label


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bin_labels(bin_edges: Sequence[float]) -> list[str]:
    return [bin_label(lower, upper) for lower, upper in zip(bin_edges, bin_edges[1:])]


_INVENTED_AREA_COLUMN = "invented % (unoccluded)"


def _metrics_table(results: EvaluationResults) -> list[str]:
    labels = _bin_labels(results.bin_edges)
    has_ap = any(metrics.ap is not None for metrics in results.variants.values())
    header = ["Variant", "mIoU_full", "mIoU_occ", _INVENTED_AREA_COLUMN]
    header += [f"mIoU_full {label}" for label in labels] + [f"mIoU_occ {label}" for label in labels]
    header += list(COCO_STATS_INDEX) if has_ap else []
    lines = [_markdown_row(header), _markdown_row(["---"] + ["---:"] * (len(header) - 1))]
    for name, metrics in results.variants.items():
        cells = [name, _percent(metrics.miou_full), _percent(metrics.miou_occ), _percent(metrics.invented_area)]
        cells += [_percent(bin_metrics.miou_full) for bin_metrics in metrics.bins]
        cells += [_percent(bin_metrics.miou_occ) for bin_metrics in metrics.bins]
        cells += [_percent((metrics.ap or {}).get(key)) for key in COCO_STATS_INDEX] if has_ap else []
        lines.append(_markdown_row(cells))
    return lines


def _bin_count_table(results: EvaluationResults) -> list[str]:
    labels = _bin_labels(results.bin_edges)
    bins = next(iter(results.variants.values())).bins if results.variants else []
    objects = [str(bin_metrics.num_objects) for bin_metrics in bins] or ["0"] * len(labels)
    occluded = [str(bin_metrics.num_occluded_objects) for bin_metrics in bins] or ["0"] * len(labels)
    return [
        _markdown_row(["Bin", *labels]),
        _markdown_row(["---"] + ["---:"] * len(labels)),
        _markdown_row(["objects", *objects]),
        _markdown_row(["occluded objects", *occluded]),
    ]


def _invented_area_summary(results: EvaluationResults) -> str:
    """The sentence defining the invented-area column, with the number of unoccluded objects it averages."""
    metrics = next(iter(results.variants.values()), None)
    count = 0 if metrics is None else metrics.num_unoccluded_objects
    return (
        f' Column "{_INVENTED_AREA_COLUMN}" averages, over the {count} objects with an empty occluded region '
        "(nothing hides them), the predicted area outside the true amodal mask as a percentage of the object's area."
    )


def _unmatched_summary(results: EvaluationResults) -> str:
    """The sentence on unmatched detections and missed objects, empty when there are none."""
    if not results.num_unmatched_detections and not results.num_missed_objects:
        return ""
    return (
        f" AP/AR also count {results.num_unmatched_detections} unmatched detections (false positives) and "
        f"{results.num_missed_objects} missed objects (false negatives), which mIoU does not."
    )


def format_markdown(results: EvaluationResults) -> str:
    """The Markdown report: one row per prediction variant (model and baselines), mIoU_full, mIoU_occ, the
    invented area of unoccluded objects, per-bin mIoU and, when present, AP columns; values in percent with 2
    decimals ("n/a" when undefined)."""
    if results.occlusion_range is None:
        counted = "all objects"
    else:
        counted = "occlusion rate in [{:.0%}, {:.0%}], inclusive".format(*results.occlusion_range)
    summary = (
        f"Objects counted: {results.num_objects_counted} of {results.num_objects_added} "
        f"({results.num_images} images; {counted}). Values in percent. mIoU_occ averages only objects with a "
        "non-empty occluded region." + _invented_area_summary(results) + " Occlusion-rate bins are [lower, upper), "
        "the last one [lower, upper]." + _unmatched_summary(results)
    )
    sections = [
        ["# Amodal segmentation metrics", "", summary, ""],
        _metrics_table(results),
        ["", "## Objects per occlusion-rate bin", ""],
        _bin_count_table(results),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class _Panel:
    """A plot area in pixels: `left`, `top`, `right`, `bottom` of the axes box."""

    left: int
    top: int
    right: int
    bottom: int

    def y_of(self, value: float) -> float:
        return self.bottom - value * (self.bottom - self.top)


def _draw_axes(draw: ImageDraw.ImageDraw, panel: _Panel, title: str, labels: Sequence[str]) -> None:
    font = _font(13)
    for percent in range(0, 101, 20):
        y = panel.y_of(percent / 100)
        draw.line([(panel.left, y), (panel.right, y)], fill="#dddddd" if percent else "black")
        draw.line([(panel.left - 5, y), (panel.left, y)], fill="black")
        draw.text((panel.left - 8, y), f"{percent}", fill="black", font=font, anchor="rm")
    draw.line([(panel.left, panel.top), (panel.left, panel.bottom)], fill="black")
    draw.text(((panel.left + panel.right) / 2, panel.top - 10), title, fill="black", font=_font(15), anchor="md")
    draw.text((panel.left - 45, (panel.top + panel.bottom) / 2), "%", fill="black", font=font, anchor="mm")
    group_width = (panel.right - panel.left) / len(labels)
    for index, label in enumerate(labels):
        x = panel.left + (index + 0.5) * group_width
        draw.line([(x, panel.bottom), (x, panel.bottom + 5)], fill="black")
        draw.text((x, panel.bottom + 8), label, fill="black", font=font, anchor="ma")


def _draw_bars(draw: ImageDraw.ImageDraw, panel: _Panel, values_per_variant: Sequence[Sequence[float | None]]) -> None:
    num_groups = len(values_per_variant[0])
    group_width = (panel.right - panel.left) / num_groups
    bar_width = 0.8 * group_width / len(values_per_variant)
    font = _font(11)
    for variant_index, values in enumerate(values_per_variant):
        colour = _PALETTE[variant_index % len(_PALETTE)]
        for group_index, value in enumerate(values):
            x0 = panel.left + group_index * group_width + 0.1 * group_width + variant_index * bar_width
            if value is None:
                draw.text((x0 + bar_width / 2, panel.bottom - 2), "n/a", fill="#555555", font=font, anchor="md")
                continue
            draw.rectangle([x0, panel.y_of(value), x0 + bar_width - 2, panel.bottom], fill=colour)
            if bar_width >= 28:
                label_position = (x0 + bar_width / 2, panel.y_of(value) - 2)
                draw.text(label_position, f"{100 * value:.1f}", fill="black", font=font, anchor="md")


def _draw_legend(draw: ImageDraw.ImageDraw, names: Sequence[str], left: int, top: int) -> None:
    font = _font(13)
    x = left
    for index, name in enumerate(names):
        draw.rectangle([x, top, x + 14, top + 14], fill=_PALETTE[index % len(_PALETTE)])
        draw.text((x + 20, top + 7), name, fill="black", font=font, anchor="lm")
        x += 20 + int(draw.textlength(name, font=font)) + 24


def draw_per_bin_chart(results: EvaluationResults, size: tuple[int, int] = (960, 720)) -> Image.Image:
    """Grouped bar chart (RGB PIL image of `size` = (width, height)) of mIoU_full (top panel) and mIoU_occ
    (bottom panel) per occlusion-rate bin, one coloured bar per prediction variant, with a legend."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    labels = _bin_labels(results.bin_edges)
    names = list(results.variants)
    _draw_legend(draw, names, left=70, top=12)
    panel_height = (height - 40) // 2
    for panel_index, (title, key) in enumerate(
        [("mIoU_full by occlusion rate", "miou_full"), ("mIoU_occ by occlusion rate", "miou_occ")]
    ):
        top = 40 + panel_index * panel_height
        panel = _Panel(left=70, top=top + 30, right=width - 20, bottom=top + panel_height - 35)
        _draw_axes(draw, panel, title, labels)
        if names:
            values = [[getattr(b, key) for b in results.variants[name].bins] for name in names]
            _draw_bars(draw, panel, values)
    return image


def write_report(
    results: EvaluationResults, out_dir: str | Path, chart_size: tuple[int, int] = (960, 720)
) -> dict[str, Path]:
    """Write `metrics.json` (every number, count and setting; `EvaluationResults.from_dict` reads it back),
    `metrics.md` (see `format_markdown`) and `per_bin_miou.png` (see `draw_per_bin_chart`, `chart_size` =
    (width, height)) into `out_dir`, created if needed. Returns the three paths by kind: json, markdown, chart."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "metrics.json",
        "markdown": directory / "metrics.md",
        "chart": directory / "per_bin_miou.png",
    }
    paths["json"].write_text(json.dumps(results.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(format_markdown(results), encoding="utf-8")
    draw_per_bin_chart(results, chart_size).save(paths["chart"])
    return paths


__all__ = ["draw_per_bin_chart", "format_markdown", "write_report"]
