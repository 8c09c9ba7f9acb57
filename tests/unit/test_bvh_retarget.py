"""BVH files and conversion of real Bandai-Namco and CMU clips onto the canonical skeleton."""
import re
from pathlib import Path

import numpy as np
import pytest

from inference.body import quat
from inference.body.bvh import read_bvh, write_bvh
from inference.body.motion import MotionError
from inference.retargeting.retarget import (
    RestAlignment,
    RetargetError,
    bvh_to_canonical,
    detect_map,
    estimate_basis,
)
from inference.body.skeleton import JOINT_NAMES

REPO = Path(__file__).resolve().parents[2]


def _roundtrip(path, tmp_path):
    a = read_bvh(path)
    out = tmp_path / "rt.bvh"
    write_bvh(out, a)
    b = read_bvh(out)
    assert b.skeleton.names == a.skeleton.names
    assert b.channels == a.channels
    assert np.allclose(b.skeleton.offsets, a.skeleton.offsets, atol=1e-5)
    assert abs(b.frame_time - a.frame_time) < 1e-7
    assert b.num_frames == a.num_frames
    # rotations equal (as rotations: q and -q are the same) within 1e-5
    assert np.abs(quat.to_matrix(b.rotations) - quat.to_matrix(a.rotations)).max() < 1e-5
    assert np.abs(b.translations - a.translations).max() < 1e-5
    return a


def test_bandai_bvh_round_trip(bandai_bvh, tmp_path):
    a = _roundtrip(bandai_bvh, tmp_path)
    assert len(a.skeleton) == 22 and a.skeleton.names[0] == "joint_Root"
    assert abs(a.fps - 30.0) < 1e-3


@pytest.mark.parametrize("variant", ["bvh_cgspeed/02_01.bvh", "bvh_max_scaled/131_01.bvh", "bvh_daz/10_03.bvh"])
def test_cmu_bvh_round_trip(cmu_dir, tmp_path, variant):
    _roundtrip(cmu_dir / variant, tmp_path)


def _check_conversion(motion, clip, max_mean_deg=5.0):
    skeleton, rot, trans = motion.with_end_sites()
    bm = detect_map(skeleton.names)
    align = RestAlignment.build(skeleton, bm, estimate_basis(skeleton, bm, rot, trans))
    errs = align.bone_direction_errors(rot, trans, clip)
    # limbs, spine and neck; feet of a standing zero pose are aligned by the sole, not the bone
    assert len(errs) >= 12, f"too few bones compared: {sorted(errs)}"
    worst = max(errs.items(), key=lambda kv: kv[1].mean())
    assert worst[1].mean() < max_mean_deg, f"bone {worst[0]} off by {worst[1].mean():.2f} deg on average"
    # root path: the canonical hips follow the source hips, scaled by leg length
    pos = clip.positions()
    hips = pos[:, [JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(axis=1)
    assert np.abs(hips - align.hip_midpoint(rot, trans)).max() < 1e-6
    # upright and on the ground
    assert pos[:, JOINT_NAMES.index("head"), 2].mean() > 1.2
    assert pos[..., 2].min() > -0.1
    return align


def test_bandai_clip_to_canonical_keeps_bone_directions_and_root_path(bandai_bvh):
    m = read_bvh(bandai_bvh)
    clip = bvh_to_canonical(m)
    assert clip.num_frames == m.num_frames and abs(clip.fps - 30) < 1e-3
    align = _check_conversion(m, clip)
    assert 0.008 < align.scale < 0.012, "centimetres become metres (by leg length)"
    # the walk moves forward: over 1 m of travel in 6.5 s
    assert np.linalg.norm(clip.root_translation[-1, :2] - clip.root_translation[0, :2]) > 1.0


@pytest.mark.parametrize("variant", ["bvh_cgspeed/02_01.bvh", "bvh_daz_scaled/60_01.bvh", "bvh_from_fbx/135_01.bvh",
                                     "bvh_from_fbx/08_02.bvh", "bvh_max_scaled/131_02.bvh"])
def test_cmu_clip_to_canonical_keeps_bone_directions_and_root_path(cmu_dir, variant):
    m = read_bvh(cmu_dir / variant)
    _check_conversion(m, bvh_to_canonical(m))


def test_canonical_t_pose_lands_as_a_t_pose_on_another_skeleton(cmu_dir):
    m = read_bvh(cmu_dir / "bvh_cgspeed/02_01.bvh")
    skeleton, rot, trans = m.with_end_sites()
    bm = detect_map(skeleton.names)
    align = RestAlignment.build(skeleton, bm, estimate_basis(skeleton, bm, rot, trans))
    r, t = align.from_canonical(MotionClip_rest())
    _, p = skeleton.forward_kinematics(r, t)
    p = quat.rotate(align.basis, p[0])
    arm = p[skeleton.index("LeftHand")] - p[skeleton.index("LeftArm")]
    leg = p[skeleton.index("LeftFoot")] - p[skeleton.index("LeftUpLeg")]
    assert quat.angle_between(arm, [1, 0, 0]) < 1.0, "left arm straight out to the left"
    assert quat.angle_between(leg, [0, 0, -1]) < 1.0, "leg straight down"
    # and back again: canonical -> CMU -> canonical is the identity
    clip = bvh_to_canonical(m)
    r2, t2 = align.from_canonical(clip)
    again = align.to_canonical(r2, t2, clip.fps)
    assert quat.quat_angle(again.rotations, clip.rotations).max() < 1e-4
    assert np.abs(again.root_translation - clip.root_translation).max() < 1e-6


def MotionClip_rest():
    from inference.body.motion import MotionClip

    return MotionClip.rest(1)


# -- bad input -----------------------------------------------------------------------------------

def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(MotionError, match="not found"):
        read_bvh(tmp_path / "nope.bvh")


def test_truncated_file_is_a_clear_error(bandai_bvh, tmp_path):
    text = Path(bandai_bvh).read_text()
    bad = tmp_path / "cut.bvh"
    bad.write_text(text[: int(len(text) * 0.6)])
    with pytest.raises(MotionError, match="truncated"):
        read_bvh(bad)
    bad.write_text(text[:400])
    with pytest.raises(MotionError):
        read_bvh(bad)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(MotionError):
        read_bvh(bad)


def test_zero_frames_and_nans_are_clear_errors(bandai_bvh, tmp_path):
    text = Path(bandai_bvh).read_text()
    head = text[: text.index("MOTION")]
    f = tmp_path / "zero.bvh"
    f.write_text(head + "MOTION\nFrames: 0\nFrame Time: 0.0333\n")
    with pytest.raises(MotionError, match="no frames"):
        read_bvh(f)
    lines = text.splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith("Frame Time")) + 3
    lines[i] = re.sub(r"^\S+", "nan", lines[i])
    f.write_text("\n".join(lines))
    with pytest.raises(MotionError, match="NaN"):
        read_bvh(f)


def test_a_non_humanoid_is_a_clear_error(tmp_path):
    """Unknown names alone are fine (the shape tells, see test_automap); a tentacle is not a humanoid."""
    lines = ["HIERARCHY", "ROOT seg0", "{", "OFFSET 0 0 0", "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    for k in range(1, 5):
        lines += [f"JOINT seg{k}", "{", "OFFSET 0 20 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "OFFSET 0 20 0", "}"] + ["}"] * 5
    lines += ["MOTION", "Frames: 2", "Frame Time: 0.033333"] + [" ".join(["0"] * 18)] * 2
    f = tmp_path / "tentacle.bvh"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(RetargetError, match="not be a humanoid"):
        bvh_to_canonical(read_bvh(f))


def test_runtime_never_imports_blender():
    offenders = []
    for py in (REPO / "inference").rglob("*.py"):
        for n, line in enumerate(py.read_text().splitlines(), 1):
            if re.match(r"\s*(import|from)\s+(bpy|mathutils|bl_ext|bmesh|addon_utils)\b", line):
                offenders.append(f"{py.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_root_channels_relative_to_the_offset_are_detected_and_grounded(cmu_dir, tmp_path):
    """Character Creator / iClone exports: the root's OFFSET is its rest place and the position
    channels move it from there. Read as usual, the walk is about a metre under the floor."""
    import dataclasses

    from inference.body.skeleton import CANONICAL, Skeleton

    motion = read_bvh(cmu_dir / "bvh_cgspeed/02_01.bvh").slice(0, 120)
    sk = motion.skeleton
    rest = motion.translations[:, 0].mean(axis=0)
    rest[[0, 2]] = 0.0  # the hips' rest height above the floor, as these exporters write it
    offsets = sk.offsets.copy()
    offsets[0] = rest
    translations = motion.translations.copy()
    translations[:, 0] -= rest
    relative = dataclasses.replace(motion, skeleton=Skeleton(sk.names, sk.parents, offsets, sk.rest_rotations),
                                   translations=translations)
    write_bvh(tmp_path / "cc.bvh", relative)
    a = bvh_to_canonical(motion)
    b = bvh_to_canonical(read_bvh(tmp_path / "cc.bvh"))
    feet = [CANONICAL.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    lowest = b.positions()[:, feet, 2].min(axis=1)
    assert abs(np.median(lowest)) < 0.05, "feet on the floor"
    assert np.abs(a.positions() - b.positions()).max() < 1e-3
