"""Converters on tiny fixtures written in each public format, malformed files, and the data CLI end to end."""

import json

import numpy as np
import PIL.Image
import pytest
from pycocotools import mask as mask_utils

from c2f_hf.cli import main
from c2f_hf.data import ConversionOptions, convert_cocoa, convert_fishbowl, convert_kins, convert_movid_a
from c2f_hf.data.annotations import AnnotationError
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.data.transforms import AmodalObjectDataset

HEIGHT, WIDTH = 30, 40


def _box_polygon(left: int, top: int, right: int, bottom: int) -> list[float]:
    return [left, top, right, top, right, bottom, left, bottom]


def _box_mask(left: int, top: int, right: int, bottom: int) -> np.ndarray:
    rle = mask_utils.frPyObjects([_box_polygon(left, top, right, bottom)], HEIGHT, WIDTH)
    return mask_utils.decode(mask_utils.merge(rle)).astype(bool)


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _save_image(path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)


def _write_kins(root) -> None:
    annotation = {
        "images": [{"id": 1, "file_name": "000001.png", "height": HEIGHT, "width": WIDTH}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "pedestrian"}],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "a_segm": [_box_polygon(2, 2, 20, 20)],
                "i_segm": [_box_polygon(2, 2, 20, 10)],
                "a_bbox": [2, 2, 18, 18],
                "i_bbox": [2, 2, 18, 8],
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 2,
                "a_segm": [_box_polygon(10, 10, 30, 25)],
                "i_segm": [_box_polygon(10, 10, 30, 25)],
                "a_bbox": [10, 10, 20, 15],
                "i_bbox": [10, 10, 20, 15],
            },
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    for split, folder in (("train", "training"), ("test", "testing")):
        (root / f"update_{split}_2020.json").write_text(json.dumps(annotation))
        _save_image(root / folder / "image_2" / "000001.png")


def _write_cocoa(root) -> None:
    amodal = _box_mask(5, 5, 25, 25)
    visible = amodal & ~_box_mask(15, 0, 40, 30)
    regions = [
        {"segmentation": _box_polygon(15, 5, 35, 20), "name": "book", "order": 1, "occlude_rate": 0.0},
        {
            "segmentation": _box_polygon(5, 5, 25, 25),
            "name": "cup",
            "order": 2,
            "visible_mask": _rle(visible),
            "invisible_mask": _rle(amodal & ~visible),
            "occlude_rate": 0.5,
        },
    ]
    for source in ("train2014", "val2014"):
        annotation = {
            "images": [{"id": 7, "file_name": f"COCO_{source}_7.jpg", "height": HEIGHT, "width": WIDTH}],
            "annotations": [{"id": 1, "image_id": 7, "regions": regions, "size": 2}],
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"COCO_amodal_{source}.json").write_text(json.dumps(annotation))
        _save_image(root / source / f"COCO_{source}_7.jpg")


def test_kins_converter_rasterises_polygons_and_keeps_categories(tmp_path):
    _write_kins(tmp_path / "kins")
    counts = convert_kins(tmp_path / "kins", tmp_path / "out")
    assert counts == {"train": 1, "test": 1}
    row = load_amodal_dataset(tmp_path / "out", "test", cache_dir=str(tmp_path / "cache"))[0]
    assert row["image_id"] == "000001.png" and row["image"].size == (WIDTH, HEIGHT)
    first, second = row["objects"]
    assert (first["category"], second["category"]) == ("car", "pedestrian")
    assert np.array_equal(np.asarray(first["amodal_mask"]) > 127, _box_mask(2, 2, 20, 20))
    assert set(np.unique(np.asarray(first["visible_mask"]))) == {0, 255}
    visible_area = (np.asarray(first["visible_mask"]) > 127).sum()
    assert first["occlusion_rate"] == pytest.approx(1 - visible_area / _box_mask(2, 2, 20, 20).sum())
    assert second["occlusion_rate"] == 0.0
    rows, columns = np.nonzero(_box_mask(2, 2, 20, 20))
    assert first["bbox"] == [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]


def test_cocoa_converter_reads_rle_visible_masks_back_to_front(tmp_path):
    _write_cocoa(tmp_path / "cocoa")
    convert_cocoa(tmp_path / "cocoa", tmp_path / "out")
    row = load_amodal_dataset(tmp_path / "out", "test", cache_dir=str(tmp_path / "cache"))[0]
    cup, book = row["objects"]
    assert (cup["category"], book["category"]) == ("cup", "book")
    amodal = _box_mask(5, 5, 25, 25)
    visible = amodal & ~_box_mask(15, 0, 40, 30)
    assert np.array_equal(np.asarray(cup["visible_mask"]) > 127, visible)
    assert cup["occlusion_rate"] == pytest.approx(1 - visible.sum() / amodal.sum())
    assert book["occlusion_rate"] == 0.0


def test_predictions_go_to_their_own_column_matched_to_objects(tmp_path):
    _write_kins(tmp_path / "kins")
    detections = [
        {"image_id": 1, "category_id": 2, "score": 0.9, "segmentation": _rle(_box_mask(10, 10, 30, 24))},
        {"image_id": 1, "category_id": 1, "score": 0.4, "segmentation": _rle(_box_mask(0, 26, 6, 30))},
    ]
    (tmp_path / "detections.json").write_text(json.dumps(detections))
    convert_kins(tmp_path / "kins", tmp_path / "out", ConversionOptions(predictions=tmp_path / "detections.json"))
    test = load_amodal_dataset(tmp_path / "out", "test", cache_dir=str(tmp_path / "cache"))
    train = load_amodal_dataset(tmp_path / "out", "train", cache_dir=str(tmp_path / "cache"))
    assert "predicted_visible_masks" not in train.column_names
    predictions = test[0]["predicted_visible_masks"]
    assert [(item["object_index"], item["category"]) for item in predictions] == [(1, "pedestrian"), (-1, "car")]
    crops = AmodalObjectDataset(test, crop_size=16, visible_source="predicted")
    assert len(crops) == 1
    sample = crops[0]
    assert (int(sample["object_index"]), int(sample["prediction_index"])) == (1, 0)
    assert not np.array_equal(sample["visible_masks"].numpy(), sample["visible_mask_targets"].numpy())


def _write_fishbowl(root, frames: int = 3) -> None:
    video = root / "train" / "video_0"
    for frame in range(frames):
        _save_image(video / "frames" / f"{frame:05d}.png", frame)
        amodal = _box_mask(2 + 5 * frame, 2, 14 + 5 * frame, 14)
        visible = amodal & ~_box_mask(15, 0, 25, 30)
        for kind, mask in (("amodal_masks", amodal), ("visible_masks", visible)):
            (video / kind / "fish_1").mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(mask.astype(np.uint8) * 255).save(video / kind / "fish_1" / f"{frame:05d}.png")


def test_fishbowl_converter_reads_per_object_masks(tmp_path):
    _write_fishbowl(tmp_path / "fishbowl")
    assert convert_fishbowl(tmp_path / "fishbowl", tmp_path / "out") == {"train": 1}
    row = load_amodal_dataset(tmp_path / "out", "train", cache_dir=str(tmp_path / "cache"))[0]
    assert row["video_id"] == "video_0" and len(row["frames"]) == 3
    (track,) = row["objects"]
    assert len(track["amodal_masks"]) == len(track["visible_masks"]) == len(track["occlusion_rates"]) == 3
    assert track["occlusion_rates"][0] == 0.0 and track["occlusion_rates"][2] > 0.0
    assert np.array_equal(np.asarray(track["amodal_masks"][1]) > 127, _box_mask(7, 2, 19, 14))


def test_movid_a_converter_reads_instance_maps_and_amodal_masks(tmp_path):
    video = tmp_path / "movid" / "test" / "clip_3"
    for frame in range(2):
        _save_image(video / f"rgba_{frame:05d}.png", frame)
        amodal = _box_mask(0, 0, 20, 20)
        occluder = _box_mask(10 * frame, 0, 10 * frame + 15, 30)
        instances = np.where(occluder, 2, np.where(amodal, 1, 0)).astype(np.uint8)
        PIL.Image.fromarray(instances).save(video / f"segmentation_{frame:05d}.png")
        for instance, mask in ((1, amodal), (2, occluder)):
            (video / "amodal" / str(instance)).mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(mask.astype(np.uint8) * 255).save(
                video / "amodal" / str(instance) / f"segmentation_{frame:05d}.png"
            )
    (video / "metadata.json").write_text(json.dumps({"instances": [{"category": "cube"}, {"category": "sphere"}]}))
    convert_movid_a(tmp_path / "movid", tmp_path / "out")
    row = load_amodal_dataset(tmp_path / "out", "test", cache_dir=str(tmp_path / "cache"))[0]
    cube, sphere = row["objects"]
    assert (cube["category"], sphere["category"]) == ("cube", "sphere")
    expected = [1 - (_box_mask(0, 0, 20, 20) & ~_box_mask(10 * f, 0, 10 * f + 15, 30)).sum() / 400 for f in range(2)]
    assert np.allclose(cube["occlusion_rates"], expected) and sphere["occlusion_rates"] == [0.0, 0.0]


def test_malformed_files_name_the_file_and_the_field(tmp_path):
    _write_kins(tmp_path / "kins")
    path = tmp_path / "kins" / "update_train_2020.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["a_segm"]
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"update_train_2020\.json: annotations\[1\]: missing field 'a_segm'"):
        convert_kins(tmp_path / "kins", tmp_path / "out")
    data["annotations"][1]["a_segm"] = [[1, 2, 3]]
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"update_train_2020\.json: annotations\[1\]: field 'a_segm'"):
        convert_kins(tmp_path / "kins", tmp_path / "out")
    path.write_text("{not json")
    with pytest.raises(AnnotationError, match=r"update_train_2020\.json: not valid JSON"):
        convert_kins(tmp_path / "kins", tmp_path / "out")
    _write_cocoa(tmp_path / "cocoa")
    cocoa = tmp_path / "cocoa" / "annotations" / "COCO_amodal_train2014.json"
    data = json.loads(cocoa.read_text())
    data["annotations"][0]["regions"][1]["visible_mask"] = {"counts": "abc"}
    cocoa.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"COCO_amodal_train2014\.json: .*regions\[1\]: field 'visible_mask'"):
        convert_cocoa(tmp_path / "cocoa", tmp_path / "out")
    _write_fishbowl(tmp_path / "fishbowl")
    (tmp_path / "fishbowl" / "train" / "video_0" / "visible_masks" / "fish_1" / "00001.png").unlink()
    with pytest.raises(AnnotationError, match=r"video_0: mask .*visible_masks/fish_1/00001\.png is missing"):
        convert_fishbowl(tmp_path / "fishbowl", tmp_path / "out")


def test_cli_writes_synthetic_images_and_videos_with_cards(tmp_path):
    out = tmp_path / "synthetic"
    assert main(["data", "synthetic", "--out", str(out), "--num-train", "3", "--num-test", "2", "--size", "64"]) == 0
    train = load_amodal_dataset(out, "train", cache_dir=str(tmp_path / "cache"))
    assert len(train) == 3 and len(load_amodal_dataset(out, "test", cache_dir=str(tmp_path / "cache"))) == 2
    assert train[0]["image"].size == (64, 64)
    card = (out / "README.md").read_text()
    assert "license: apache-2.0" in card and "Occlusion-rate distribution" in card and "| train | 3 |" in card
    video_out = tmp_path / "video"
    arguments = ["data", "synthetic", "--out", str(video_out), "--num-train", "1", "--num-test", "1"]
    assert main(arguments + ["--video", "--size", "64", "--num-frames", "3", "--seed", "4"]) == 0
    clip = load_amodal_dataset(video_out, "train", cache_dir=str(tmp_path / "cache"))[0]
    assert len(clip["frames"]) == 3 and all(len(track["visible_masks"]) == 3 for track in clip["objects"])


def test_cli_converts_kins_with_a_card(tmp_path):
    _write_kins(tmp_path / "kins")
    arguments = ["data", "convert", "kins", "--root", str(tmp_path / "kins"), "--out", str(tmp_path / "out")]
    assert main(arguments) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["README.md", "test.parquet", "train.parquet"]
    assert "see the original release" in (tmp_path / "out" / "README.md").read_text()
