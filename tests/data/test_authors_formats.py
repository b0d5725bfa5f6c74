"""The authors' release layouts (KINS, COCOA-cls, FISHBOWL, MOViD-A), users' formats and the conversion policy, on
tiny fixtures written in each layout (`authors_layouts`) and converted through the CLI."""

import json

import numpy as np
import pytest

from authors_layouts import (
    HEIGHT,
    WIDTH,
    box,
    convert,
    load,
    masks_of,
    polygon,
    rle,
    save_image,
    save_mask,
    write_cocoa_cls,
    write_fishbowl_release,
    write_kins_release,
    write_movid_release,
)


def test_kins_release_test_split_is_the_authors_list_with_their_pairing(tmp_path):
    write_kins_release(tmp_path / "kins")
    assert convert("kins", tmp_path / "kins", tmp_path / "out") == 0
    test = load(tmp_path / "out", "test", tmp_path)
    assert [row["image_id"] for row in test] == ["000007.png", "000001.png"]
    first = test[0]
    assert len(first["objects"]) == 2
    assert np.array_equal(masks_of(first["objects"][0], "amodal_mask"), box(22, 5, 38, 25))
    assert np.array_equal(masks_of(first["objects"][1], "visible_mask"), box(2, 2, 20, 10))
    detections = first["predicted_visible_masks"]
    assert [item["object_index"] for item in detections] == [0, 1]
    assert np.array_equal(masks_of(detections[1], "visible_mask"), box(2, 3, 19, 11))
    assert [item["object_index"] for item in test[1]["predicted_visible_masks"]] == [0]
    assert "predicted_visible_masks" not in load(tmp_path / "out", "train", tmp_path).column_names
    card = (tmp_path / "out" / "README.md").read_text()
    assert "as released" in card


def test_kins_release_images_are_resized_to_the_masks_like_the_authors(tmp_path, caplog):
    write_kins_release(tmp_path / "kins", image_size=(WIDTH + 6, HEIGHT + 2))
    assert convert("kins", tmp_path / "kins", tmp_path / "out") == 0
    assert load(tmp_path / "out", "test", tmp_path)[0]["image"].size == (WIDTH, HEIGHT)
    assert "1 of 2 images resized" in caplog.text


def test_kins_annotations_test_set_and_original_field_names(tmp_path):
    write_kins_release(tmp_path / "kins")
    original = {
        "images": [{"id": 1, "file_name": "000001.png", "height": HEIGHT, "width": WIDTH}],
        "annotations": [
            {
                "image_id": 1,
                "category_id": 1,
                "segmentation": [polygon(2, 2, 20, 20)],
                "inmodal_seg": [polygon(2, 2, 9, 9)],
            }
        ],
    }
    (tmp_path / "kins" / "update_test_2020.json").unlink()
    (tmp_path / "kins" / "instances_val.json").write_text(json.dumps(original))
    assert convert("kins", tmp_path / "kins", tmp_path / "out", "--test-set", "annotations") == 0
    (item,) = load(tmp_path / "out", "test", tmp_path)[0]["objects"]
    assert np.array_equal(masks_of(item, "amodal_mask"), box(2, 2, 20, 20))
    assert np.array_equal(masks_of(item, "visible_mask"), box(2, 2, 9, 9))


def test_cocoa_cls_release_keeps_the_authors_object_set_and_ground_truth_lines(tmp_path):
    write_cocoa_cls(tmp_path / "cocoa")
    assert convert("cocoa", tmp_path / "cocoa", tmp_path / "out") == 0
    (row,) = load(tmp_path / "out", "test", tmp_path)
    detected, listed = row["objects"]
    assert np.array_equal(masks_of(detected, "amodal_mask"), box(26, 2, 38, 16))
    assert listed["category"] == "cup" and np.array_equal(masks_of(listed, "visible_mask"), box(5, 5, 15, 25))
    first, second = row["predicted_visible_masks"]
    assert (first["object_index"], second["object_index"], second["score"]) == (0, 1, 1.0)
    assert np.array_equal(masks_of(second, "visible_mask"), box(5, 5, 15, 25))
    (train,) = load(tmp_path / "out", "train", tmp_path)
    assert train["objects"][0]["occlusion_rate"] == pytest.approx(0.5)


def test_original_cocoa_leaves_stuff_out_unless_asked(tmp_path):
    root = tmp_path / "cocoa"
    regions = [
        {"segmentation": polygon(5, 5, 25, 25), "name": "cup", "order": 2, "isStuff": 0},
        {"segmentation": polygon(0, 0, 40, 10), "name": "sky", "order": 1, "isStuff": 1},
    ]
    for source in ("train2014", "val2014"):
        data = {
            "images": [{"id": 1, "file_name": f"{source}.jpg", "height": HEIGHT, "width": WIDTH}],
            "annotations": [{"image_id": 1, "regions": regions}],
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"COCO_amodal_{source}.json").write_text(json.dumps(data))
        save_image(root / source / f"{source}.jpg")
    assert convert("cocoa", root, tmp_path / "out") == 0
    assert [item["category"] for item in load(tmp_path / "out", "test", tmp_path)[0]["objects"]] == ["cup"]
    assert convert("cocoa", root, tmp_path / "stuff", "--keep-stuff") == 0
    assert [item["category"] for item in load(tmp_path / "stuff", "test", tmp_path)[0]["objects"]] == ["cup", "sky"]
    assert "kept (--keep-stuff)" in (tmp_path / "stuff" / "README.md").read_text()


def test_ground_truth_is_kept_as_released_unless_union_is_asked(tmp_path):
    root = tmp_path / "coco"
    amodal, visible = box(5, 5, 20, 20), box(3, 5, 12, 20)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}],
        "annotations": [{"image_id": 1, "full": [polygon(5, 5, 20, 20)], "seen": rle(visible, True), "cls": 2}],
        "categories": [{"id": 2, "name": "toy"}],
    }
    root.mkdir()
    (root / "train.json").write_text(json.dumps(data))
    save_image(root / "images" / "a.png")
    fields = ["--amodal-field", "full", "--visible-field", "seen", "--category-field", "cls"]
    arguments = ["--annotations", f"train={root / 'train.json'}", *fields]
    assert convert("coco_amodal", root / "images", tmp_path / "out", *arguments) == 0
    (item,) = load(tmp_path / "out", "train", tmp_path)[0]["objects"]
    assert item["category"] == "toy" and np.array_equal(masks_of(item, "amodal_mask"), amodal)
    assert np.array_equal(masks_of(item, "visible_mask"), visible)
    assert item["occlusion_rate"] == pytest.approx(1 - (amodal & visible).sum() / amodal.sum())
    assert convert("coco_amodal", root / "images", tmp_path / "union", *arguments, "--amodal-union-visible") == 0
    (item,) = load(tmp_path / "union", "train", tmp_path)[0]["objects"]
    assert np.array_equal(masks_of(item, "amodal_mask"), amodal | visible)
    assert "amodal ∪ visible" in (tmp_path / "union" / "README.md").read_text()


def test_mask_folder_reads_users_images_and_object_masks(tmp_path):
    split = tmp_path / "mine" / "train"
    save_image(split / "images" / "street.jpg")
    save_mask(split / "amodal" / "street" / "car.png", box(5, 5, 25, 25) * 255)
    save_mask(split / "visible" / "street" / "car.png", box(5, 5, 15, 25) * 255)
    assert convert("mask_folder", tmp_path / "mine", tmp_path / "out") == 0
    (item,) = load(tmp_path / "out", "train", tmp_path)[0]["objects"]
    assert item["category"] == "car" and item["occlusion_rate"] == pytest.approx(0.5)
    (split / "visible" / "street" / "car.png").unlink()
    assert convert("mask_folder", tmp_path / "mine", tmp_path / "missing") == 1
    assert not (tmp_path / "missing").exists() or not any((tmp_path / "missing").glob("*.parquet"))


def test_fishbowl_release_pickle_and_frames(tmp_path):
    write_fishbowl_release(tmp_path / "fishbowl")
    assert convert("fishbowl", tmp_path / "fishbowl", tmp_path / "out") == 0
    (clip,) = load(tmp_path / "out", "test", tmp_path)
    assert clip["video_id"] == "00043" and len(clip["frames"]) == 3
    fish, late = clip["objects"]
    assert np.array_equal(np.asarray(fish["amodal_masks"][1]) > 127, box(7, 2, 19, 14))
    assert not (np.asarray(late["amodal_masks"][0]) > 127).any() and late["bboxes"][0] == [0, 0, 0, 0]
    assert fish["category"] == "fish"


def test_movid_a_release_layout(tmp_path):
    write_movid_release(tmp_path / "movid")
    assert convert("movid_a", tmp_path / "movid", tmp_path / "out") == 0
    (clip,) = load(tmp_path / "out", "test", tmp_path)
    cube, sphere = clip["objects"]
    assert (cube["category"], sphere["category"]) == ("cube", "sphere")
    expected = [1 - (box(0, 0, 20, 20) & ~box(10 * f, 0, 10 * f + 15, 30)).sum() / 400 for f in range(2)]
    assert np.allclose(cube["occlusion_rates"], expected) and sphere["occlusion_rates"] == [0.0, 0.0]


def test_a_conversion_without_objects_fails_and_writes_nothing(tmp_path, capsys):
    write_movid_release(tmp_path / "movid", objects="0_0_9\n")
    assert convert("movid_a", tmp_path / "movid", tmp_path / "out") == 1
    message = capsys.readouterr().err
    assert "split 'test': no object found in" in message and "segmentation_full_" in message
    assert not list((tmp_path / "out").glob("*.parquet*"))


def test_a_missing_listed_entry_names_the_file_and_line(tmp_path, capsys):
    write_kins_release(tmp_path / "kins")
    (tmp_path / "kins" / "kins_intersection_list.txt").write_text("7_0\n7_5\n")
    assert convert("kins", tmp_path / "kins", tmp_path / "out") == 1
    assert "kins_intersection.pkl: image 7: no instance 5" in capsys.readouterr().err
