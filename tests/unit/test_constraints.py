"""Constraints: one set of mask builders for training and the runtime; named constructors only."""
import random

import numpy as np
import pytest
import torch

from inference.generation import representation as rep
from inference.generation.constraints import Constraints, body_part_mask, joint_mask, keyframe_mask, trajectory_mask
from inference.body.motion import MotionClip, MotionError
from inference.body.skeleton import BODY_PART_BY_NAME, BODY_PARTS, JOINT_NAMES
from training import masks


def _clip(n=50):
    q = np.tile([1.0, 0, 0, 0], (n, len(JOINT_NAMES), 1))
    return MotionClip(q, np.zeros((n, 3)), 20.0)


def _training_mask(kind, seed, length=50):
    """The training mask of `kind` and the random draws that made it, replayed."""
    return masks.random_mask(length, random.Random(seed), kind).numpy() > 0.5


def test_training_keyframes_are_the_runtime_pose_keys():
    for seed in range(20):
        m = _training_mask("keyframes", seed)
        frames = np.flatnonzero(m.any(1))
        assert len(frames) > 0
        assert np.array_equal(m, Constraints.pose_keys(_clip(), frames).mask)


def test_training_trajectory_is_the_runtime_root_path():
    for seed in range(20):
        m = _training_mask("trajectory", seed)
        frames = np.flatnonzero(m.any(1))
        height = bool(m[:, 2].any())
        whole = len(frames) == 50
        runtime = Constraints.root_path(_clip(), None if whole else frames, height=height).mask
        assert np.array_equal(m, runtime)


def test_training_body_parts_are_the_runtime_body_parts():
    seen_keep = set()
    for seed in range(60):
        rng = random.Random(seed)
        m = masks.random_mask(50, rng, "body_part").numpy() > 0.5
        # replay the draws: which parts, keep or regenerate, which range
        rng = random.Random(seed)
        parts = rng.sample(BODY_PARTS, rng.randint(1, 2))
        keep = not rng.random() < 0.5
        frames = None
        if rng.random() < 0.3:
            a = rng.randint(0, 25)
            frames = (a, rng.randint(a + 1, 50))
        seen_keep.add(keep)
        runtime = Constraints.body_parts(_clip(), [p.name for p in parts], keep=keep, frames=frames).mask
        assert np.array_equal(m, runtime)
    assert seen_keep == {True, False}


def test_body_parts_come_from_the_skeleton_and_cover_their_joints_only():
    m = body_part_mask(10, ["left_arm"])
    cols = np.flatnonzero(m[0])
    want = [c for j in BODY_PART_BY_NAME["left_arm"].joints
            for c in range(*rep.joint_feature_slices(JOINT_NAMES.index(j)).indices(rep.NUM_FEATURES))]
    assert sorted(cols) == sorted(want)
    root = body_part_mask(10, ["root_trajectory"])
    assert root[:, 0:3].all() and not root[:, 3:].any()
    regen = body_part_mask(10, ["left_arm"], keep=False)
    assert not regen[:, rep.CONTACT].any() and not (regen & m).any() and (regen | m)[:, :rep.CONTACT.start].all()


def test_partial_keys_and_joints_by_frames():
    c = Constraints.partial_keys(_clip(), {3: ["left_wrist"], 7: ["left_wrist", "right_wrist"]}, root_frames=[7])
    assert np.flatnonzero(c.mask.any(1)).tolist() == [3, 7]
    assert np.array_equal(c.mask[7], (joint_mask(50, ["left_wrist", "right_wrist"], root=True))[7])
    assert np.array_equal(c.mask[3], joint_mask(50, ["left_wrist"])[3])
    j = Constraints.joints(_clip(), ["head"], frames=range(10, 20))
    assert np.flatnonzero(j.mask.any(1)).tolist() == list(range(10, 20))
    both = Constraints.pose_keys(j.known, [0]) | j
    assert np.array_equal(both.mask, keyframe_mask(50, [0]) | j.mask)


def test_constraint_messages_say_what_to_fix():
    with pytest.raises(MotionError, match="canonical joints are"):
        Constraints.joints(_clip(), ["left_pinky"])
    with pytest.raises(MotionError, match="choose from: left_arm"):
        Constraints.body_parts(_clip(), ["tail"])
    with pytest.raises(MotionError, match=r"shape \(50, 139\)"):
        Constraints(_clip(), np.zeros((49, rep.NUM_FEATURES), bool))
    with pytest.raises(MotionError, match="contacts cannot be constrained"):
        Constraints(_clip(), np.ones((50, rep.NUM_FEATURES), bool))
    with pytest.raises(MotionError, match="same reference"):
        Constraints.pose_keys(_clip(), [0]) | Constraints.pose_keys(_clip(), [1])


def test_training_masks_are_float_tensors_of_the_runtime_columns():
    m = masks.random_mask(30, random.Random(0), "keyframes_trajectory")
    assert m.dtype == torch.float32 and set(m.unique().tolist()) <= {0.0, 1.0}
    assert np.array_equal(m.numpy()[:, 0:2] > 0, trajectory_mask(30)[:, 0:2])


def test_keys_are_guided_and_kept_parts_are_not():
    """Keys (whole-pose, partial, and the In-between panel's) ask the sampler to follow what they imply
    (`defaults.KEY_GUIDANCE`); kept body parts and root paths do not, so a part edit's prompt still
    leads; combining keeps the stronger; a value outside 0-10 is refused."""
    from inference.generation import defaults, inbetween
    from inference.generation.inbetween import KeyedPoses

    clip = _clip(41)
    assert defaults.KEY_GUIDANCE > 1.0
    assert Constraints.pose_keys(clip, [0, 20, 40]).key_guidance == defaults.KEY_GUIDANCE
    assert Constraints.partial_keys(clip, {0: ["pelvis"], 40: ["pelvis"]}).key_guidance == defaults.KEY_GUIDANCE
    parts = Constraints.body_parts(clip, ["left_leg", "right_leg"])
    assert parts.key_guidance == 1.0 and Constraints.root_path(clip).key_guidance == 1.0
    assert (parts | Constraints.pose_keys(clip, [0])).key_guidance == defaults.KEY_GUIDANCE
    assert parts.with_draft(np.zeros_like(parts.mask, float)).key_guidance == 1.0
    keys = KeyedPoses(np.array([1.0, 25.0, 49.0]), MotionClip(clip.rotations[:3], clip.root_translation[:3], 24.0),
                      np.ones((3, len(JOINT_NAMES)), bool), np.ones(3, bool))
    assert inbetween.constraints(keys, 20.0)[0].key_guidance == defaults.KEY_GUIDANCE
    with pytest.raises(MotionError, match="Key guidance"):
        Constraints(clip, keyframe_mask(41, [0]), key_guidance=-1.0)
