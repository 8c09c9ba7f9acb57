"""Keys at the scene's frame rate onto the model's 20-fps grid and back, without moving any key."""
import numpy as np
import pytest

from inference.body import quat
from inference.generation.inbetween import InbetweenError, KeyedPoses, constraints, fill_frames, model_frames, to_scene
from inference.body.motion import MotionClip
from inference.generation.representation import ROOT, joint_feature_slices


def _poses(n, fps, seed=0):
    rng = np.random.default_rng(seed)
    rot = quat.normalize(np.tile(quat.IDENTITY, (n, 22, 1)) + 0.3 * rng.normal(size=(n, 22, 4)))
    return MotionClip(rot, rng.normal(size=(n, 3)), fps)


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 60.0, 23.976])
def test_every_key_lands_on_a_model_frame_with_its_exact_pose(fps):
    frames = np.array([1.0, 4.0, 25.0, 26.0, 97.0, 337.0])  # gaps of 1 frame to 10 s
    keys = KeyedPoses(frames, _poses(len(frames), fps), np.ones((len(frames), 22), bool), np.ones(len(frames), bool))
    c, idx = constraints(keys, 20.0)
    assert (np.diff(idx) >= 1).all() and c.num_frames == idx[-1] + 1
    # each gap is stretched by at most half a model frame (keys closer than one model frame get one)
    exact = np.diff(frames) * 20.0 / fps
    assert np.abs(np.diff(idx) - np.maximum(exact, 1.0)).max() <= 0.5 + 1e-9
    assert c.mask[idx].any(axis=1).all() and not np.delete(c.mask, idx, axis=0).any()
    assert np.array_equal(c.known.root_translation[idx], keys.poses.root_translation)
    assert np.abs(c.known.rotations[idx] - keys.poses.rotations).max() < 1e-15
    # and back: the model's clip at the keyed scene frames is the model's key frames, not an interpolation
    back = to_scene(c.known, keys, idx, frames)
    assert np.array_equal(back.root_translation, keys.poses.root_translation)


def test_partial_and_root_only_keys_mask_only_what_was_keyed():
    frames = np.array([0.0, 12.0, 24.0])
    joints = np.zeros((3, 22), bool)
    joints[0] = joints[2] = True  # whole poses at both ends
    joints[1, 13] = True  # only the left wrist in the middle
    root = np.array([True, False, True])
    keys = KeyedPoses(frames, _poses(3, 24.0), joints, root)
    c, idx = constraints(keys, 20.0)
    mid = c.mask[idx[1]]
    assert mid[joint_feature_slices(13)].all() and mid.sum() == 6 and not mid[ROOT].any()
    only_root = KeyedPoses(frames[:2], _poses(2, 24.0), np.zeros((2, 22), bool), np.ones(2, bool))
    c2, idx2 = constraints(only_root, 20.0)
    assert c2.mask[idx2][:, ROOT].all() and c2.mask.sum() == 6


def test_fill_frames_never_include_keys_and_thin_only_between_them():
    keys = KeyedPoses(np.array([1.0, 9.0, 12.0]), _poses(3, 24.0), np.ones((3, 22), bool), np.ones(3, bool))
    assert fill_frames(keys).tolist() == [2, 3, 4, 5, 6, 7, 8, 10, 11]
    assert fill_frames(keys, every=3).tolist() == [4, 7]


def test_fewer_than_two_keyed_frames_is_refused_with_a_message():
    with pytest.raises(InbetweenError, match="at least two keyed frames"):
        KeyedPoses(np.array([5.0]), _poses(1, 24.0), np.ones((1, 22), bool), np.ones(1, bool))


def test_keys_travel_backwards_only_when_the_root_moves_against_the_pelvis_facing():
    from inference.generation.generate import travels_backwards
    from inference.generation.constraints import keyframe_mask

    n = 41
    q = np.tile(np.array([1.0, 0, 0, 0]), (n, 22, 1))  # the pelvis faces -Y at rest
    mask = keyframe_mask(n, [0, 20, 40])

    def clip(step):
        root = np.zeros((n, 3))
        root[:, :2] = np.arange(n)[:, None] * np.asarray(step)
        root[:, 2] = 0.9
        return MotionClip(q, root, 20.0)

    assert travels_backwards(clip([0.0, 0.05]), mask), "2 m towards +Y, facing -Y"
    assert not travels_backwards(clip([0.0, -0.05]), mask), "forwards"
    assert not travels_backwards(clip([0.05, 0.0]), mask), "sideways"
    assert not travels_backwards(clip([0.0, 0.01]), mask), "0.4 m back: stepping, not walking"
    root_only = mask.copy()
    root_only[:, 2:] = False
    assert not travels_backwards(clip([0.0, 0.05]), root_only), "no facing keyed: nothing to tell"
