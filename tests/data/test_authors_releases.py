"""The authors' releases convert with their object sets, masks and categories: KINS and COCOA detections named by
the annotation json, COCOA-cls objects that nothing occludes (no `visible_mask`), `--predictions` pairings set
against the authors', FISHBOWL and MOViD-A object sets and masks; fixtures in the release layouts (written here or
by `authors_layouts`), converted through the CLI."""

import json
import pickle

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
    write_fishbowl_release,
    write_movid_release,
)

KINS_CATEGORIES = [{"id": 1, "name": "cyclist"}, {"id": 2, "name": "pedestrian"}, {"id": 4, "name": "car"}]
COCOA_CATEGORIES = [{"id": 3, "name": "cup"}, {"id": 18, "name": "dog"}]
# KINS test objects per image: (category id, amodal box, visible box), boxes as (left, top, right, bottom).
KINS_OBJECTS = {
    7: [(4, (2, 2, 20, 20), (2, 2, 20, 10)), (2, (22, 5, 38, 25), (22, 5, 38, 25))],
    1: [(1, (10, 10, 30, 28), (10, 10, 30, 20))],
}


def _kins_annotation(image_id: int, category_id: int, amodal: tuple, visible: tuple) -> dict:
    return {
        "image_id": image_id,
        "category_id": category_id,
        "a_segm": [polygon(*amodal)],
        "i_segm": [polygon(*visible)],
    }


def _kins_instance(amodal: tuple, visible: tuple, shift: int = 1) -> dict:
    left, top, right, bottom = visible
    return {
        "pred_visible_mask": rle(box(left + shift, top, right, bottom + shift)),
        "gt_visible_mask": rle(box(*visible)),
        "gt_full_mask": [polygon(*amodal)],
        "pred_visible_mask_bbox": np.array([left + shift, top, right - left - shift, bottom - top + shift]),
    }


def write_kins_with_classes(root) -> None:
    """KINS.tar: `update_{train,test}_2020.json` naming car / pedestrian / cyclist, AISFormer's image table and the
    intersection pickle, whose instances carry the masks of annotated objects but no class."""
    images = [
        {"id": image_id, "file_name": f"{image_id:06d}.png", "height": HEIGHT, "width": WIDTH} for image_id in (7, 1)
    ]
    annotations = [_kins_annotation(image_id, *item) for image_id, objects in KINS_OBJECTS.items() for item in objects]
    data = {"images": images, "annotations": annotations, "categories": KINS_CATEGORIES}
    root.mkdir(parents=True)
    for split, folder in (("train", "training"), ("test", "testing")):
        (root / f"update_{split}_2020.json").write_text(json.dumps(data))
        for seed, image in enumerate(images):
            save_image(root / folder / "image_2" / image["file_name"], seed)
    (root / "instances_val_upate.json").write_text(json.dumps({"images": images, "annotations": []}))
    instances = {
        image_id: [_kins_instance(amodal, visible) for _, amodal, visible in objects]
        for image_id, objects in KINS_OBJECTS.items()
    }
    instances[7].append(_kins_instance((0, 25, 6, 30), (0, 25, 6, 30), 0))
    (root / "kins_intersection.pkl").write_bytes(pickle.dumps(instances))
    (root / "kins_intersection_list.txt").write_text("7_1\n1_0\n7_0\n7_2\n")


def _cocoa_annotation(category_id: int, amodal: np.ndarray, visible: np.ndarray | None) -> dict:
    """A COCOA-cls annotation; `visible` None is an object nothing occludes: no `visible_mask`, no
    `invisible_mask`, as COCOA-cls stores it. `bbox` is the amodal mask's `[x, y, width, height]`."""
    rows, columns = np.nonzero(amodal)
    annotation = {
        "image_id": 42,
        "category_id": category_id,
        "segmentation": rle(amodal, True),
        "bbox": [int(columns.min()), int(rows.min()), int(np.ptp(columns)) + 1, int(np.ptp(rows)) + 1],
    }
    if visible is not None:
        annotation["visible_mask"] = rle(visible, True)
        annotation["invisible_mask"] = rle(amodal & ~visible, True)
    return annotation


def write_cocoa_with_unoccluded(root) -> None:
    """COCOA.tar: COCOA-cls with an occluded cup and an unoccluded dog, `fusion_test.pkl` with a detection of each
    (and one of no annotated object) and `c2f_seg_test_list.txt` with a ground-truth line of the dog."""
    cup, cup_visible, dog = box(5, 5, 25, 25), box(5, 5, 15, 25), box(26, 2, 38, 16)
    annotations = [_cocoa_annotation(3, cup, cup_visible), _cocoa_annotation(18, dog, None)]
    root.mkdir(parents=True)
    for source in ("train2014", "val2014"):
        file_name = f"COCO_{source}_000000000042.jpg"
        data = {
            "images": [{"id": 42, "file_name": file_name, "height": HEIGHT, "width": WIDTH}],
            "categories": COCOA_CATEGORIES,
            "annotations": annotations,
        }
        (root / f"COCO_amodal_{source}_with_classes.json").write_text(json.dumps(data))
        save_image(root / source / file_name)

    def instance(amodal: np.ndarray, visible: np.ndarray, detected: np.ndarray) -> dict:
        return {"pred_visible_mask": rle(detected), "gt_visible_mask": rle(visible), "gt_full_mask": rle(amodal)}

    stray = box(0, 26, 4, 30)
    fusion = {
        "vrsp_42": [instance(dog, dog, box(27, 2, 38, 16)), instance(stray, stray, stray)],
        "aisformer_42": [instance(cup, cup_visible, box(5, 5, 16, 25))],
    }
    (root / "fusion_test.pkl").write_bytes(pickle.dumps(fusion))
    listed = "vrsp,42,0\naisformer,42,0\nvrsp,42,1\n1,/authors/data/COCOA/val2014/COCO_val2014_000000000042.jpg\n"
    (root / "c2f_seg_test_list.txt").write_text(listed)


def _categories(row: dict) -> tuple[list[str], list[str]]:
    return [item["category"] for item in row["objects"]], [item["category"] for item in row["predicted_visible_masks"]]


def test_kins_release_objects_and_detections_are_named_by_the_annotation_json(tmp_path, caplog):
    write_kins_with_classes(tmp_path / "kins")
    assert convert("kins", tmp_path / "kins", tmp_path / "out") == 0
    first, second = load(tmp_path / "out", "test", tmp_path)
    assert _categories(first) == (["pedestrian", "car", "object"], ["pedestrian", "car", "object"])
    assert _categories(second) == (["cyclist"], ["cyclist"])
    assert [item["object_index"] for item in first["predicted_visible_masks"]] == [0, 1, 2]
    assert "1 of 4 listed instances match no annotation of" in caplog.text and "update_test_2020.json" in caplog.text


def test_kins_release_categories_equal_the_annotation_test_set(tmp_path):
    write_kins_with_classes(tmp_path / "kins")
    assert convert("kins", tmp_path / "kins", tmp_path / "authors") == 0
    assert convert("kins", tmp_path / "kins", tmp_path / "annotations", "--test-set", "annotations") == 0
    named = {}
    for folder in ("authors", "annotations"):
        for row in load(tmp_path / folder, "test", tmp_path / folder):
            for item in row["objects"]:
                named.setdefault(folder, {})[(row["image_id"], tuple(item["bbox"]))] = item["category"]
    assert named["authors"].items() - {(("000007.png", (0, 25, 6, 5)), "object")} <= named["annotations"].items()
    assert sorted(named["annotations"].values()) == ["car", "cyclist", "pedestrian"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "none of ['update_test_2020.json', 'instances_val.json'"),
        ("category", "update_test_2020.json: annotations[0]: field 'category_id' should be an integer or a string"),
        ("not json", "update_test_2020.json: not valid JSON"),
    ],
)
def test_kins_release_with_a_missing_or_malformed_annotation_json_names_it(tmp_path, capsys, damage, message):
    root = tmp_path / "kins"
    write_kins_with_classes(root)
    path = root / "update_test_2020.json"
    if damage == "missing":
        path.unlink()
    elif damage == "category":
        data = json.loads(path.read_text())
        data["annotations"][0]["category_id"] = [4]
        path.write_text(json.dumps(data))
    else:
        path.write_text("{")
    assert convert("kins", root, tmp_path / "out") == 1
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.parquet*"))


def test_cocoa_cls_objects_without_visible_mask_are_unoccluded(tmp_path):
    write_cocoa_with_unoccluded(tmp_path / "cocoa")
    assert convert("cocoa", tmp_path / "cocoa", tmp_path / "out") == 0
    (train,) = load(tmp_path / "out", "train", tmp_path)
    cup, dog = train["objects"]
    assert (cup["category"], dog["category"]) == ("cup", "dog")
    assert np.array_equal(masks_of(dog, "visible_mask"), masks_of(dog, "amodal_mask"))
    assert dog["occlusion_rate"] == 0.0 and cup["occlusion_rate"] == pytest.approx(0.5)
    (test,) = load(tmp_path / "out", "test", tmp_path)
    listed_dog = test["objects"][3]
    assert np.array_equal(masks_of(listed_dog, "visible_mask"), box(26, 2, 38, 16))
    assert np.array_equal(masks_of(test["predicted_visible_masks"][3], "visible_mask"), box(26, 2, 38, 16))


def test_cocoa_detection_lines_are_named_like_their_ground_truth(tmp_path):
    write_cocoa_with_unoccluded(tmp_path / "cocoa")
    assert convert("cocoa", tmp_path / "cocoa", tmp_path / "out") == 0
    (test,) = load(tmp_path / "out", "test", tmp_path)
    assert _categories(test) == (["dog", "cup", "object", "dog"], ["dog", "cup", "object", "dog"])
    assert [item["object_index"] for item in test["predicted_visible_masks"]] == [0, 1, 2, 3]
    assert convert("cocoa", tmp_path / "cocoa", tmp_path / "annotations", "--test-set", "annotations") == 0
    (annotated,) = load(tmp_path / "annotations", "test", tmp_path / "annotations")
    assert [item["category"] for item in annotated["objects"]] == ["cup", "dog"]


# Detections of the COCOA fixture's cup (visible box(5, 5, 15, 25)) and dog (box(26, 2, 38, 16)): (source, box,
# score, visible-mask IoU with the object the authors' pickle pairs it with).
DETECTIONS = [
    ("aisformer", (5, 5, 16, 25), 0.95, "cup"),  # IoU 0.91
    ("aisformer", (27, 2, 38, 16), 0.9, "dog"),  # IoU 0.92
    ("vrsp", (26, 3, 38, 16), 0.8, "dog"),  # IoU 0.93, a second detection of the dog
    ("vrsp", (5, 5, 9, 25), 0.7, "cup"),  # IoU 0.40
]


def write_cocoa_detections(root) -> None:
    """The COCOA fixture with `DETECTIONS` as the authors ship them (`fusion_test.pkl`, each detection with its
    ground truth, all listed) and as a COCO results json (`results.json`)."""
    write_cocoa_with_unoccluded(root)
    truths = {"cup": (box(5, 5, 25, 25), box(5, 5, 15, 25)), "dog": (box(26, 2, 38, 16), box(26, 2, 38, 16))}
    fusion, lines, results = {}, [], []
    for source, detected, score, name in DETECTIONS:
        amodal, visible = truths[name]
        instances = fusion.setdefault(f"{source}_42", [])
        lines.append(f"{source},42,{len(instances)}")
        instances.append(
            {
                "pred_visible_mask": rle(box(*detected)),
                "gt_visible_mask": rle(visible),
                "gt_full_mask": rle(amodal),
                "score": score,
            }
        )
        category_id = {"cup": 3, "dog": 18}[name]
        results.append(
            {"image_id": 42, "category_id": category_id, "segmentation": rle(box(*detected), True), "score": score}
        )
    (root / "fusion_test.pkl").write_bytes(pickle.dumps(fusion))
    (root / "c2f_seg_test_list.txt").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(json.dumps(results))


def _paired(out, tmp_path) -> list[int]:
    (row,) = load(out, "test", tmp_path / out.name)
    return [item["object_index"] for item in row["predicted_visible_masks"]]


def test_predictions_pairing_against_the_authors_pairing(tmp_path):
    root = tmp_path / "cocoa"
    write_cocoa_detections(root)
    assert convert("cocoa", root, tmp_path / "authors") == 0
    assert _paired(tmp_path / "authors", tmp_path) == [0, 1, 2, 3]
    results = ["--test-set", "annotations", "--predictions", str(root / "results.json")]
    assert convert("cocoa", root, tmp_path / "one", *results) == 0
    assert _paired(tmp_path / "one", tmp_path) == [0, 1, -1, -1]
    assert convert("cocoa", root, tmp_path / "each", *results, "--pairing", "per-detection") == 0
    assert _paired(tmp_path / "each", tmp_path) == [0, 1, 1, -1]
    card = (tmp_path / "each" / "README.md").read_text()
    assert "per-detection, visible-mask IoU >= 0.5" in card and "--pairing per-detection" in card


def test_pairing_needs_predictions(tmp_path, capsys):
    write_cocoa_with_unoccluded(tmp_path / "cocoa")
    assert convert("cocoa", tmp_path / "cocoa", tmp_path / "out", "--pairing", "per-detection") == 1
    assert "pairing 'per-detection' pairs the detections of --predictions" in capsys.readouterr().err


def test_kins_annotations_of_another_size_than_the_pickle_still_name_its_instances(tmp_path):
    root = tmp_path / "kins"
    write_kins_with_classes(root)
    data = json.loads((root / "update_test_2020.json").read_text())
    data["images"][1].update(height=2 * HEIGHT, width=2 * WIDTH)
    (annotation,) = [item for item in data["annotations"] if item["image_id"] == 1]
    annotation["a_segm"] = [[2 * value for value in polygon] for polygon in annotation["a_segm"]]
    annotation["i_segm"] = [[2 * value for value in polygon] for polygon in annotation["i_segm"]]
    (root / "update_test_2020.json").write_text(json.dumps(data))
    assert convert("kins", root, tmp_path / "out") == 0
    assert _categories(load(tmp_path / "out", "test", tmp_path)[1]) == (["cyclist"], ["cyclist"])


def test_movid_a_object_set_is_the_instance_list_with_its_mask_values(tmp_path):
    write_movid_release(tmp_path / "movid", objects="0_1_2\n")
    assert convert("movid_a", tmp_path / "movid", tmp_path / "out") == 0
    (clip,) = load(tmp_path / "out", "test", tmp_path)
    (sphere,) = clip["objects"]
    assert sphere["category"] == "sphere"
    for frame in range(2):
        expected = box(10 * frame, 0, 10 * frame + 15, 30)
        assert np.array_equal(np.asarray(sphere["amodal_masks"][frame]) > 127, expected)
        assert np.array_equal(np.asarray(sphere["visible_masks"][frame]) > 127, expected)


def test_fishbowl_object_set_is_every_pickle_entry_with_its_masks(tmp_path):
    write_fishbowl_release(tmp_path / "fishbowl")
    assert convert("fishbowl", tmp_path / "fishbowl", tmp_path / "out") == 0
    (clip,) = load(tmp_path / "out", "test", tmp_path)
    assert len(clip["objects"]) == 2
    for frame in range(3):
        amodal = box(2 + 5 * frame, 2, 14 + 5 * frame, 14)
        fish = clip["objects"][0]
        assert np.array_equal(np.asarray(fish["amodal_masks"][frame]) > 127, amodal)
        assert np.array_equal(np.asarray(fish["visible_masks"][frame]) > 127, amodal & ~box(15, 0, 25, 30))
