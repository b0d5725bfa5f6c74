"""The annotation readers: the plain-data unpickler, RLE and polygon decoding, list files."""

import os
import pickle

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from authors_layouts import write_kins_release
from c2f_hf.cli import main
from c2f_hf.data.annotations import AnnotationError, read_list_file, read_plain_pickle, segmentation_to_mask


class RunsCode:
    """Unpickling this runs a shell command (the classic code-running `__reduce__`)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_plain_pickles_with_numpy_arrays_load(tmp_path):
    data = {
        7: [{"bbox": np.array([1, 2, 3, 4]), "score": np.float32(0.5), "counts": b"abc", "ids": (1, {2})}],
        "key": [np.zeros((2, 3), dtype=bool)],
    }
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"data-{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = read_plain_pickle(path)
        assert np.array_equal(loaded[7][0]["bbox"], [1, 2, 3, 4]) and loaded[7][0]["score"] == np.float32(0.5)
        assert loaded[7][0]["ids"] == (1, {2}) and loaded["key"][0].shape == (2, 3)


def test_a_code_running_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({7: [RunsCode(marker)]}))
    with pytest.raises(AnnotationError, match=r"evil\.pkl: refused to load: global (posix|os|nt)\.system is not plain"):
        read_plain_pickle(path)
    assert not marker.exists()


def test_the_converter_refuses_a_code_running_detection_pickle(tmp_path, capsys):
    write_kins_release(tmp_path / "kins")
    marker = tmp_path / "ran"
    (tmp_path / "kins" / "kins_intersection.pkl").write_bytes(pickle.dumps({7: [RunsCode(marker)]}))
    arguments = ["data", "convert", "kins", "--root", str(tmp_path / "kins"), "--out", str(tmp_path / "out")]
    assert main(arguments) == 1
    assert "kins_intersection.pkl: refused to load" in capsys.readouterr().err
    assert not marker.exists() and not list((tmp_path / "out").glob("*.parquet*"))


def test_broken_pickles_and_lists_name_the_file(tmp_path):
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(AnnotationError, match=r"broken\.pkl: not a readable pickle"):
        read_plain_pickle(path)
    (tmp_path / "list.txt").write_text("\n\n")
    with pytest.raises(AnnotationError, match=r"list\.txt: the list file names no entry"):
        read_list_file(tmp_path / "list.txt")
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        read_plain_pickle(tmp_path / "missing.pkl")


def test_segmentations_decode_from_polygons_text_bytes_and_uncompressed_rle(tmp_path):
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, 2:7] = True
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    uncompressed = {"size": [6, 8], "counts": [int(n) for n in _run_lengths(mask)]}
    for value in (
        encoded,
        {"size": encoded["size"], "counts": encoded["counts"].decode()},
        [encoded],
        uncompressed,
        [[2, 1, 7, 1, 7, 4, 2, 4]],
    ):
        assert np.array_equal(segmentation_to_mask(value, 6, 8, tmp_path, "here", "field"), mask)
    with pytest.raises(AnnotationError, match="here: field 'field' has size"):
        segmentation_to_mask(encoded, 5, 8, tmp_path, "here", "field")


def _run_lengths(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: alternating run lengths of 0 and 1 in column-major order, starting with 0."""
    flat = mask.flatten(order="F").astype(int)
    runs, current, length = [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    return [*runs, length]
