"""SAM 2 tracking as the video pipeline's visible-mask source, with a tiny randomly initialised SAM 2 saved by the
tests and the shipped tiny video C2F-Seg model."""

import os
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, Sam2VideoModel, pipeline

from c2f_hf.checkpoints import default_model_path, default_video_model_path
from c2f_hf.models.c2f_seg.video_mask_sources import load_video_mask_source
from c2f_hf.models.c2f_seg.visible_mask_sources import sam2_image_model
from c2f_testing import run_python, save_tiny_mask2former, save_tiny_sam, save_tiny_sam2

NUM_FRAMES, HEIGHT, WIDTH = 4, 48, 60
POINTS, LABELS = [[[20, 20]], [[40, 30]]], [[1], [1]]


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory):
    pytest.importorskip("torchvision")  # transformers' SAM 2 processors need it
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "sam2")


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(NUM_FRAMES)]


@pytest.fixture(scope="module")
def tracker(sam2_folder):
    return load_video_mask_source(str(sam2_folder))


@pytest.fixture(scope="module")
def tracking_segmenter(sam2_folder):
    return pipeline(
        "video-amodal-segmentation",
        model=str(default_video_model_path()),
        visible_mask_model=str(sam2_folder),
        trust_remote_code=False,
    )


def sam2_tracks(folder, frames, prompt_frame: int, **prompts):
    """`(objects, F, H, W)` bool masks and `(objects, F)` presence probabilities of SAM 2 run directly with
    transformers: the prompt frame, then forward and backward propagation."""
    model, processor = Sam2VideoModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)
    session = processor.init_video_session(video=frames, inference_device="cpu")
    num_objects = len(next(iter(prompts.values()))[0])
    processor.add_inputs_to_inference_session(
        inference_session=session, frame_idx=prompt_frame, obj_ids=list(range(num_objects)), **prompts
    )
    masks = np.zeros((num_objects, len(frames), HEIGHT, WIDTH), dtype=bool)
    scores = np.zeros((num_objects, len(frames)))
    with torch.no_grad():
        outputs = [model(inference_session=session, frame_idx=prompt_frame)]
        outputs += list(model.propagate_in_video_iterator(session, start_frame_idx=prompt_frame))
        outputs += list(model.propagate_in_video_iterator(session, start_frame_idx=prompt_frame, reverse=True))
    for output in outputs:
        frame_masks = processor.post_process_masks([output.pred_masks], original_sizes=[[HEIGHT, WIDTH]])[0]
        masks[:, output.frame_idx] = frame_masks[:, 0].numpy()
        scores[:, output.frame_idx] = torch.sigmoid(output.object_score_logits).reshape(-1).numpy()
    return masks, scores


def test_tracks_equal_sam2_run_directly_and_fill_the_frames_before_the_prompt_frame(tracker, sam2_folder, frames):
    boxes = [[5, 5, 30, 30], [30, 20, 55, 45]]
    points, labels = [[[20, 20]], [[40, 30], [10, 10]]], [[1], [1, 0]]
    tracked = tracker(frames, prompt_frame=2, input_points=points, input_labels=labels, input_boxes=boxes)
    masks, scores = sam2_tracks(
        sam2_folder,
        frames,
        2,
        input_points=[[[[20, 20], [-10, -10]], [[40, 30], [10, 10]]]],
        input_labels=[[[1, -10], [1, 0]]],
        input_boxes=[boxes],
    )
    assert len(tracked) == 2
    for item, expected_masks, expected_scores in zip(tracked, masks, scores):
        assert item.masks.shape == (NUM_FRAMES, HEIGHT, WIDTH) and item.masks.dtype == bool
        assert np.array_equal(item.masks, expected_masks)
        assert item.detection_scores == pytest.approx(expected_scores, abs=1e-6)
        assert ((0 <= item.detection_scores) & (item.detection_scores <= 1)).all()
    # frames 0 and 1 come from the backward propagation only
    assert all(item.masks[:2].any() for item in tracked)


@pytest.fixture(scope="module")
def tracked(tracker, frames):
    """The tracks of `POINTS` prompted on frame 1."""
    return tracker(frames, prompt_frame=1, input_points=POINTS, input_labels=LABELS)


def test_the_pipeline_completes_the_tracked_masks_of_every_frame(tracking_segmenter, tracked, frames):
    objects = tracking_segmenter(frames, input_points=POINTS, input_labels=LABELS, prompt_frame=1, greedy=True)
    assert len(objects) == len(POINTS)
    # SAM 2 loses the second object on the last frame (an empty visible mask): it is completed all the same
    assert not tracked[1].masks[3].any()
    for result, item in zip(objects, tracked):
        for name in ("visible_masks", "detection_scores", "amodal_masks", "completed"):
            assert len(result[name]) == NUM_FRAMES, name
        assert np.array_equal(np.stack([np.asarray(mask) > 0 for mask in result["visible_masks"]]), item.masks)
        assert result["detection_scores"] == pytest.approx(item.detection_scores.tolist(), abs=1e-6)
        assert all(mask.mode == "L" and mask.size == (WIDTH, HEIGHT) for mask in result["visible_masks"])
    given = tracking_segmenter(frames, visible_masks=[list(item.masks) for item in tracked], greedy=True)
    for result, reference in zip(objects, given):
        assert reference["detection_scores"] == [None] * NUM_FRAMES
        for mask, expected in zip(result["amodal_masks"], reference["amodal_masks"]):
            assert np.array_equal(np.asarray(mask), np.asarray(expected))


def test_prompts_in_an_input_dict_track_like_call_arguments(tracking_segmenter, tracked, frames):
    clip = {"frames": frames, "input_points": POINTS, "input_labels": LABELS, "prompt_frame": 1}
    (objects,) = tracking_segmenter([clip], greedy=True)
    for result, item in zip(objects, tracked):
        assert np.array_equal(np.stack([np.asarray(mask) > 0 for mask in result["visible_masks"]]), item.masks)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"input_points": [[[5, 5]], [[500, 5]]]}, r"input_points\[1\]\[0\]: \[500, 5\] is outside the 60x48 frame"),
        ({"input_boxes": [[5, 5, 90, 30]]}, r"input_boxes\[0\]: .* is not a box inside the 60x48 frame"),
        (
            {"input_points": [[[5, 5]]], "prompt_frame": 4},
            r"prompt_frame: 4 is not a frame of the 4-frame clip \(0..3\)",
        ),
        ({"input_points": [[[5, 5]]], "prompt_frame": -1}, "prompt_frame: -1 is not a frame of the 4-frame clip"),
        (
            {"input_points": [[[5, 5]]], "prompt_frame": 1.0},
            r"prompt_frame: expected the index of a frame \(an integer\)",
        ),
        ({"input_points": [[[5, 5]]], "prompt_frame": True}, r"prompt_frame: expected the index of a frame"),
        ({"input_labels": [[1]]}, "input_labels: given without input_points"),
        ({}, "a promptable visible_mask_model needs prompts"),
        (
            {"input_points": [[[5, 5]]], "visible_masks": [[np.ones((HEIGHT, WIDTH), bool)] * NUM_FRAMES]},
            "input_points: give either prompts .* or visible_masks, not both",
        ),
        (
            {"prompt_frame": 0, "visible_masks": [[np.ones((HEIGHT, WIDTH), bool)] * NUM_FRAMES]},
            "prompt_frame: give either prompts .* or visible_masks, not both",
        ),
    ],
)
def test_bad_prompts_are_named(tracking_segmenter, frames, arguments, message):
    with pytest.raises(ValueError, match=message):
        tracking_segmenter(frames, **arguments)


def test_prompts_without_a_visible_mask_model_are_refused(frames):
    plain = pipeline("video-amodal-segmentation", model=str(default_video_model_path()), trust_remote_code=False)
    with pytest.raises(ValueError, match=r"input_points: prompts need a SAM 2 visible_mask_model, e\.g\."):
        plain(frames, input_points=[[[5, 5]]])


def test_an_object_sam2_does_not_find_on_the_prompt_frame_is_named(sam2_folder, frames):
    model = Sam2VideoModel.from_pretrained(sam2_folder)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(-1e4)  # SAM 2 blanks absent objects' masks
    model.name_or_path = ""
    with pytest.raises(ValueError, match="visible_mask_processor: needed with a model object"):
        load_video_mask_source(model)
    blind = load_video_mask_source(model, AutoProcessor.from_pretrained(sam2_folder))
    with pytest.raises(ValueError, match=r"input_boxes\[0\]: the visible_mask_model found no pixel .* on frame 1"):
        blind(frames, prompt_frame=1, input_boxes=[[5, 5, 30, 30]])


@pytest.fixture(scope="module")
def other_models(tmp_path_factory, sam2_folder):
    """Visible-mask models the video pipeline cannot track with, by the model type its error names."""
    root = tmp_path_factory.mktemp("others")
    return {
        "sam": str(save_tiny_sam(root / "sam")),
        "mask2former": str(save_tiny_mask2former(root / "mask2former")),
        "sam2": sam2_image_model(str(sam2_folder)),
    }


@pytest.mark.parametrize("model_type", ["sam", "mask2former", "sam2"])
def test_a_visible_mask_model_that_is_not_a_sam2_video_model_is_refused_at_construction(other_models, model_type):
    message = rf"visible_mask_model: .* has model_type '{model_type}'; the video pipeline needs a SAM 2 video model"
    with pytest.raises(ValueError, match=message):
        pipeline(
            "video-amodal-segmentation",
            model=str(default_video_model_path()),
            visible_mask_model=other_models[model_type],
            trust_remote_code=False,
        )


def test_without_torchvision_a_sam2_source_says_how_to_install_it(sam2_folder, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torchvision"] = None  # as where torchvision is absent or built for another torch
        from transformers import pipeline
        import c2f_hf
        from c2f_hf.checkpoints import default_model_path, default_video_model_path

        for task in ("amodal-segmentation", "video-amodal-segmentation"):
            model = str(default_video_model_path()) if task.startswith("video") else "{default_model_path()}"
            try:
                pipeline(task, model=model, visible_mask_model="{sam2_folder}", trust_remote_code=False)
            except ImportError as error:
                print(task, error)
        """
    )
    result = run_python(script, tmp_path, dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    for task in ("amodal-segmentation", "video-amodal-segmentation"):
        assert f"{task} visible_mask_model: '{sam2_folder}' is a SAM 2 model" in result.stdout
    assert result.stdout.count("need torchvision, which does not import here") == 2
    assert result.stdout.count("pip install torch==2.14.1 torchvision==0.29.1") == 2
