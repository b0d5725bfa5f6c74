"""What a user hands the data commands stays in its bounds: files named by data stay under `--root` and are
images of the annotated size, RLEs and polygons are checked before a decoder sees them, ground truth is never
dropped or merged silently, pickles cannot allocate beyond their size, cards name no path of the machine, and every
error is one line naming the file and the field."""

import json
import pickle
import struct
import zlib

import numpy as np
import pytest

from authors_layouts import (
    HEIGHT,
    WIDTH,
    box,
    polygon,
    rle,
    save_image,
    save_mask,
    write_fishbowl_release,
    write_kins_release,
)
from c2f_hf.cli import main
from c2f_hf.data.annotations import AnnotationError, read_plain_pickle, rle_to_mask


def _coco_root(tmp_path, image: dict | None = None, annotation: dict | None = None, images: list | None = None):
    """A `coco_amodal` root with one 40x30 image and one object; `image`/`annotation` override their fields."""
    root = tmp_path / "root"
    save_image(root / "a.png")
    entry = {"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH, **(image or {})}
    item = {"image_id": 1, "segmentation": [polygon(2, 2, 20, 20)], "visible_mask": [polygon(2, 2, 20, 10)]}
    data = {"images": images or [entry], "annotations": [{**item, **(annotation or {})}]}
    (root / "train.json").write_text(json.dumps(data))
    return root


def _convert_coco(root, out, capsys) -> tuple[int, str]:
    code = main(
        ["data", "convert", "coco_amodal", "--root", str(root), "--out", str(out)]
        + ["--annotations", f"train={root / 'train.json'}"]
    )
    return code, capsys.readouterr().err


def _convert_folder(root, out, capsys) -> tuple[int, str]:
    code = main(["data", "convert", "mask_folder", "--root", str(root), "--out", str(out)])
    return code, capsys.readouterr().err


def _mask_folder(tmp_path):
    """A `mask_folder` root with image `a.png` and one object `car`."""
    split = tmp_path / "folders" / "train"
    save_image(split / "images" / "a.png")
    save_mask(split / "amodal" / "a" / "car.png", box(2, 2, 20, 20) * 255)
    save_mask(split / "visible" / "a" / "car.png", box(2, 2, 20, 10) * 255)
    return split


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` (the header is all PIL reads before the pixel check)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("file_name", ["../secret.txt", "{secret}", "link.png"])
def test_files_named_by_data_stay_under_the_root(tmp_path, capsys, file_name):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    root = _coco_root(tmp_path, {"file_name": file_name.format(secret=secret)})
    (root / "link.png").symlink_to(secret)
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "images[0].file_name" in err and "outside" in err
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_a_file_that_is_no_image_is_refused(tmp_path, capsys):
    root = _coco_root(tmp_path, {"file_name": "notes.png"})
    (root / "notes.png").write_text("not an image")
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "notes.png" in err and "images[0].file_name" in err and "not a readable image" in err


def test_a_symlinked_image_leaving_a_mask_folder_is_refused(tmp_path, capsys):
    split = _mask_folder(tmp_path)
    outside = tmp_path / "outside.png"
    save_image(outside)
    (split / "images" / "b.png").symlink_to(outside)
    code, err = _convert_folder(split.parent, tmp_path / "out", capsys)
    assert code == 1 and "b.png" in err and "outside" in err


@pytest.mark.parametrize(
    ("segmentation", "problem"),
    [
        ({"size": [HEIGHT, WIDTH], "counts": [5, 10]}, "sum to 15"),
        ({"size": [HEIGHT, WIDTH], "counts": [-5, 5, 1200]}, "non-negative"),
        ({"size": [HEIGHT, WIDTH], "counts": ["a", 1200]}, "integers"),
        ({"size": ["a", WIDTH], "counts": [1200]}, "size"),
        ({"size": [HEIGHT, WIDTH], "counts": "52"}, "sum to"),
        ({"size": [HEIGHT, WIDTH], "counts": "0\x7f"}, "compressed"),
        ({"size": [HEIGHT, WIDTH], "counts": "0é"}, "ASCII"),
    ],
)
def test_malformed_rles_are_refused_before_decoding(tmp_path, capsys, segmentation, problem):
    root = _coco_root(tmp_path, annotation={"segmentation": segmentation})
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "train.json: annotations[0]: field 'segmentation'" in err and problem in err
    assert len(err.strip().splitlines()) == 1


def test_rles_that_cover_the_mask_decode_as_before():
    mask = box(3, 4, 20, 25)
    assert (rle_to_mask(rle(mask, True), HEIGHT, WIDTH, "x.json", "a", "m") == mask).all()
    counts = [int(value) for value in np.diff(np.flatnonzero(np.diff(np.r_[2, mask.T.ravel(), 2])))]
    assert (rle_to_mask({"size": [HEIGHT, WIDTH], "counts": counts}, HEIGHT, WIDTH, "x", "a", "m") == mask).all()


def test_polygons_with_non_finite_coordinates_are_refused(tmp_path, capsys):
    root = _coco_root(tmp_path)
    path = root / "train.json"
    path.write_text(path.read_text().replace("[[2, 2, 20, 2,", "[[NaN, 2, 20, 2,", 1))
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "annotations[0]: field 'segmentation'" in err and "finite" in err


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        ({"size": [HEIGHT, WIDTH], "counts": [7]}, "sum to 7"),
        ({"size": [10**6, 10**6], "counts": [10**12]}, "exceeds the limit"),
    ],
)
def test_a_malformed_rle_in_the_authors_kins_pickle_is_refused(tmp_path, capsys, prediction, problem):
    root = tmp_path / "kins"
    write_kins_release(root)
    data = pickle.loads((root / "kins_intersection.pkl").read_bytes())
    data[7][1]["pred_visible_mask"] = prediction
    (root / "kins_intersection.pkl").write_bytes(pickle.dumps(data))
    code = main(["data", "convert", "kins", "--root", str(root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "kins_intersection.pkl" in err and "pred_visible_mask" in err and problem in err


@pytest.mark.parametrize("replace", ["symlink", "resize"])
def test_video_frames_stay_in_their_folder_at_the_masks_size(tmp_path, capsys, replace):
    root = tmp_path / "fishbowl"
    write_fishbowl_release(root)
    frame = root / "test_data" / "test_frames" / "00043" / "00001.png"
    frame.unlink()
    if replace == "symlink":
        save_image(tmp_path / "outside.png")
        frame.symlink_to(tmp_path / "outside.png")
    else:
        save_image(frame, size=(WIDTH, HEIGHT + 2))
    code = main(["data", "convert", "fishbowl", "--root", str(root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "00001.png" in err and ("leads outside" if replace == "symlink" else "40x32") in err


def test_a_category_id_that_is_no_id_is_named(tmp_path, capsys):
    root = _coco_root(tmp_path, annotation={"category_id": [1]})
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "annotations[0]: field 'category_id' should be an integer or a string" in err


def test_duplicate_image_ids_are_refused(tmp_path, capsys):
    image = {"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}
    root = _coco_root(tmp_path, images=[image, {**image, "file_name": "b.png"}])
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "images[1]: field 'id' 1 is also images[0]'s" in err


def test_an_image_whose_size_differs_from_its_annotation_is_refused(tmp_path, capsys):
    root = _coco_root(tmp_path, {"height": HEIGHT + 1})
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 1 and "images[0]" in err and "40x30" in err and "40x31" in err


def test_mask_folder_refuses_anti_aliased_masks(tmp_path, capsys):
    split = _mask_folder(tmp_path)
    save_mask(split / "amodal" / "a" / "car.png", box(2, 2, 20, 20) * 200 + box(1, 1, 21, 21) * 40)
    code, err = _convert_folder(split.parent, tmp_path / "out", capsys)
    assert code == 1 and "amodal/a/car.png" in err and "not binary" in err


@pytest.mark.parametrize(
    ("move", "problem"),
    [
        (("amodal/a/car.png", "amodal/a/bus.png"), "visible/a/car.png has no amodal mask"),
        (("amodal/a", "amodal/A"), "amodal/A matches no image"),
        (("images/a.png", "images/a.jpeg"), "size"),
    ],
)
def test_mask_folder_refuses_unpaired_masks_and_folders(tmp_path, capsys, move, problem):
    split = _mask_folder(tmp_path)
    source, target = (split / name for name in move)
    source.rename(target)
    if target.suffix == ".jpeg":
        save_image(target, size=(WIDTH + 2, HEIGHT))
    code, err = _convert_folder(split.parent, tmp_path / "out", capsys)
    assert code == 1 and problem in err


def test_mask_folder_reads_upper_case_suffixes(tmp_path, capsys):
    split = _mask_folder(tmp_path)
    for kind in ("amodal", "visible"):
        (split / kind / "a" / "car.png").rename(split / kind / "a" / "car.PNG")
    (split / "images" / "a.png").rename(split / "images" / "a.PNG")
    code, err = _convert_folder(split.parent, tmp_path / "out", capsys)
    assert code == 0, err


def test_a_decompression_bomb_is_refused_by_name(tmp_path, capsys):
    split = _mask_folder(tmp_path)
    (split / "amodal" / "a" / "car.png").write_bytes(_png_header(15000, 15000))
    code, err = _convert_folder(split.parent, tmp_path / "out", capsys)
    assert code == 1 and "car.png" in err and "225000000 pixels" in err


@pytest.mark.parametrize(
    "payload",
    [
        b"cbuiltins\nbytearray\n(I10000000000000\ntR.",
        b"c__builtin__\nbytes\n(I10000000000000\ntR.",
        b"cnumpy\nndarray\n((I10000000000000\nttR.",
        b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I10000000000000\ntS'b'\ntR.",
    ],
)
def test_a_pickle_cannot_allocate_beyond_its_size(tmp_path, payload):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(payload)
    with pytest.raises(AnnotationError, match="bomb.pkl: .*bytes"):
        read_plain_pickle(path)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_plain_pickles_of_numpy_data_still_load(tmp_path, protocol):
    path = tmp_path / "data.pkl"
    mask, empty = np.arange(12, dtype=np.uint8).reshape(3, 4), np.zeros((0,))
    data = {"mask": mask, "empty": empty, "raw": bytearray(b"xy"), "none": b"", "score": np.float32(0.5)}
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = read_plain_pickle(path)
    assert (loaded["mask"] == mask).all() and loaded["empty"].shape == (0,) and loaded["none"] == b""
    assert loaded["raw"] == b"xy" and loaded["score"] == 0.5


def test_cards_of_converted_data_name_no_path_of_the_machine(tmp_path, capsys):
    root = _coco_root(tmp_path)
    code, err = _convert_coco(root, tmp_path / "out", capsys)
    assert code == 0, err
    card = (tmp_path / "out" / "README.md").read_text()
    assert str(tmp_path) not in card and "--annotations train=train.json" in card


def test_synthetic_size_is_bounded(tmp_path, capsys):
    code = main(
        ["data", "synthetic", "--out", str(tmp_path), "--num-train", "1", "--num-test", "0"] + ["--size", "100000"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--size" in err and "4096" in err
