"""Writers of tiny fixtures in the authors' release layouts (KINS, COCOA-cls, FISHBOWL, MOViD-A) and the small
mask helpers the data tests share."""

import json
import pickle

import numpy as np
import PIL.Image
from pycocotools import mask as mask_utils

from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset

HEIGHT, WIDTH = 30, 40


def box(left: int, top: int, right: int, bottom: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def polygon(left: int, top: int, right: int, bottom: int) -> list[float]:
    return [left, top, right, top, right, bottom, left, bottom]


def rle(mask: np.ndarray, as_text: bool = False) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(encoded["size"]), "counts": encoded["counts"].decode() if as_text else encoded["counts"]}


def save_image(path, seed: int = 0, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)


def save_mask(path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(values.astype(np.uint8)).save(path)


def convert(dataset: str, root, out, *flags: str) -> int:
    return main(["data", "convert", dataset, "--root", str(root), "--out", str(out), *flags])


def load(out, split: str, tmp_path):
    return load_amodal_dataset(out, split, cache_dir=str(tmp_path / "cache"))


def masks_of(item: dict, key: str) -> np.ndarray:
    return np.asarray(item[key]) > 127


def write_kins_release(root, image_size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
    """KINS.tar as the authors ship it: the 2020 json, AISFormer's image table and the intersection pickle."""
    annotation = {
        "images": [{"id": 1, "file_name": "000001.png", "height": HEIGHT, "width": WIDTH}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "a_segm": [polygon(2, 2, 20, 20)], "i_segm": [polygon(2, 2, 20, 10)]}
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (root / f"update_{split}_2020.json").write_text(json.dumps(annotation))
    save_image(root / "training" / "image_2" / "000001.png")
    images = [{"id": 7, "file_name": "000007.png", "height": HEIGHT, "width": WIDTH}, *annotation["images"]]
    (root / "instances_val_upate.json").write_text(json.dumps({"images": images, "annotations": []}))
    save_image(root / "testing" / "image_2" / "000007.png", 1, image_size)
    save_image(root / "testing" / "image_2" / "000001.png", 2)

    def instance(amodal: np.ndarray, visible: np.ndarray, detected: np.ndarray) -> dict:
        rows, columns = np.nonzero(amodal)
        full = polygon(columns.min(), rows.min(), columns.max() + 1, rows.max() + 1)
        bbox = np.array([columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1])
        return {
            "pred_visible_mask": rle(detected),
            "gt_visible_mask": rle(visible),
            "gt_full_mask": [full],
            "pred_visible_mask_bbox": bbox,
        }

    detections = {
        7: [
            instance(box(2, 2, 20, 20), box(2, 2, 20, 10), box(2, 3, 19, 11)),
            instance(box(22, 5, 38, 25), box(22, 5, 38, 25), box(23, 5, 38, 24)),
            instance(box(0, 0, 5, 5), box(0, 0, 5, 5), box(0, 0, 5, 5)),
        ],
        1: [instance(box(10, 10, 30, 28), box(10, 10, 30, 20), box(11, 10, 30, 21))],
    }
    (root / "kins_intersection.pkl").write_bytes(pickle.dumps(detections))
    (root / "kins_intersection_list.txt").write_text("7_1\n1_0\n7_0\n")


def write_cocoa_cls(root) -> None:
    """COCOA.tar: COCOA-cls json (RLE masks), fusion_test.pkl and c2f_seg_test_list.txt with both line kinds."""
    cup_amodal, cup_visible = box(5, 5, 25, 25), box(5, 5, 15, 25)
    for source in ("train2014", "val2014"):
        data = {
            "images": [{"id": 42, "file_name": f"COCO_{source}_000000000042.jpg", "height": HEIGHT, "width": WIDTH}],
            "categories": [{"id": 3, "name": "cup"}],
            "annotations": [
                {
                    "image_id": 42,
                    "category_id": 3,
                    "segmentation": rle(cup_amodal, True),
                    "visible_mask": rle(cup_visible, True),
                }
            ],
        }
        (root / f"COCO_amodal_{source}_with_classes.json").parent.mkdir(parents=True, exist_ok=True)
        (root / f"COCO_amodal_{source}_with_classes.json").write_text(json.dumps(data))
        save_image(root / source / f"COCO_{source}_000000000042.jpg")
    fusion = {
        "vrsp_42": [
            {
                "pred_visible_mask": rle(box(26, 2, 38, 12)),
                "gt_visible_mask": rle(box(26, 2, 38, 10)),
                "gt_full_mask": rle(box(26, 2, 38, 16)),
            }
        ]
    }
    (root / "fusion_test.pkl").write_bytes(pickle.dumps(fusion))
    (root / "c2f_seg_test_list.txt").write_text(
        "vrsp,42,0\n0,/authors/data/COCOA/val2014/COCO_val2014_000000000042.jpg\n"
    )


def write_fishbowl_release(root, frames: int = 3) -> None:
    """FISHBOWL as the authors ship it: `test_data/test_data.pkl` and `test_data/test_frames/<video>/`."""
    entries = {}
    for frame in range(frames):
        save_image(root / "test_data" / "test_frames" / "00043" / f"{frame:05d}.png", frame)
    for object_id, present in (("0", range(frames)), ("1", range(1, frames))):
        per_frame = {}
        for frame in present:
            amodal = box(2 + 5 * frame, 2, 14 + 5 * frame, 14) if object_id == "0" else box(25, 10, 35, 20)
            visible = amodal & ~box(15, 0, 25, 30)
            per_frame[frame] = {
                "VM": [rle(visible)],
                "FM": [rle(amodal)],
                "VM_bx": [0, 1, 0, 1],
                "loss_mask_weight": [],
            }
        entries[f"00043_{object_id}"] = per_frame
    (root / "test_data" / "test_data.pkl").write_bytes(pickle.dumps(entries))


def write_movid_release(root, objects: str = "0_0_1\n0_1_2\n") -> None:
    """MOViD_A.tar: `test_instance.txt`, `test/<video>/metadata.json`, rgba_full_*, segmentation_full_* and
    segmentation_<object>_* files."""
    video = root / "test" / "0"
    frames = 2
    metadata = {"metadata": {"num_frames": frames, "height": HEIGHT, "width": WIDTH}, "instances": []}
    metadata["instances"] = [{"category": "cube"}, {"asset_id": "sphere"}]
    video.mkdir(parents=True)
    (video / "metadata.json").write_text(json.dumps(metadata))
    for frame in range(frames):
        save_image(video / f"rgba_full_{frame:05d}.png", frame)
        cube, sphere = box(0, 0, 20, 20), box(10 * frame, 0, 10 * frame + 15, 30)
        save_mask(video / f"segmentation_full_{frame:05d}.png", np.where(sphere, 2, np.where(cube, 1, 0)))
        save_mask(video / f"segmentation_0_{frame:05d}.png", cube * 1)
        save_mask(video / f"segmentation_1_{frame:05d}.png", sphere * 2)
    (root / "test_instance.txt").write_text(objects)
