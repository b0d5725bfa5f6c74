"""Object clips of the video datasets (`data.video_transforms`): windows cropped with one box per window."""

from c2f_hf.data.transforms import collate_object_crops
from c2f_hf.data.video_transforms import VideoObjectClipDataset
from c2f_testing import TINY_IMAGE_SIZE


def test_object_clip_windows_share_one_crop_box_and_keep_empty_frames(clip_dataset):
    clips = VideoObjectClipDataset(clip_dataset, num_frames=3, crop_size=TINY_IMAGE_SIZE, training=True)
    assert len(clips) > 0
    assert set(clips.windows[:, 2].tolist()) <= {0, 1, 2}
    batch = collate_object_crops([clips[index] for index in range(len(clips))])
    assert batch["pixel_values"].shape == (len(clips), 3, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert batch["crop_box"].shape == (len(clips), 4)
    visible_areas = batch["visible_mask_targets"].flatten(2).sum(-1)
    assert (visible_areas > 0).any(dim=1).all(), "every window shows its object at least once"
    assert (visible_areas == 0).any(), "the synthetic clips hide an object completely in some frame"
