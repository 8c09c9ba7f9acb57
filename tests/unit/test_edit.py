"""Body-part editing in the runtime: what is kept, where the model's grid sits, and bad input."""
import numpy as np
import torch
import pytest

from inference.body import quat
from inference.generation.constraints import POSE, joint_columns
from inference.generation.edit import EditedParts, EditError, check_span, joints_of_bones, plan, to_scene
from inference.body.motion import MotionClip
from inference.generation.representation import ROOT
from inference.body.skeleton import BODY_PARTS


def _walkish(n, fps, seed=0):
    """A smooth motion (so velocities mean something), travelling along -Y."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    axis = quat.normalize(np.concatenate([np.zeros((22, 1)), rng.normal(size=(22, 3))], 1)[:, 1:])
    ang = 0.4 * np.sin(2 * np.pi * (t[:, None] + rng.uniform(size=22)[None]))
    rot = np.concatenate([np.cos(ang / 2)[..., None], np.sin(ang / 2)[..., None] * axis[None]], -1)
    root = np.stack([0.02 * np.sin(t), -1.2 * t, 0.95 + 0.02 * np.sin(4 * np.pi * t)], 1)
    return MotionClip(rot, root, fps)


def test_parts_come_from_the_skeletons_body_parts():
    e = EditedParts.from_parts(["left_arm", "head"])
    assert set(e.joints) == {"left_collar", "left_shoulder", "left_elbow", "left_wrist", "neck", "head"}
    assert not e.root and e.parts == ("left_arm", "head")
    assert EditedParts.from_parts(["lower_body"]).root and EditedParts.from_parts(["root_trajectory"]).root
    for p in BODY_PARTS:  # every part the panel shows can be edited
        EditedParts.from_parts([p.name])
    with pytest.raises(EditError, match="Choose the body parts"):
        EditedParts.from_parts([])
    with pytest.raises(EditError, match="Unknown body part"):
        EditedParts.from_parts(["tail"])


def test_selected_bones_map_to_joints_through_the_rig_map():
    rig_map = {"left_shoulder": "upper_arm.L", "left_elbow": "forearm.L", "spine1": ["spine", "spine.001"]}
    assert joints_of_bones(["forearm.L", "spine.001", "tail"], rig_map) == ("spine1", "left_elbow")
    assert joints_of_bones(["tail"], rig_map) == ()


@pytest.mark.parametrize("fps", [24.0, 30.0, 23.976])
def test_plan_keeps_every_other_joint_and_the_frames_around_the_range(fps):
    src = _walkish(200, fps)
    first, span = 1.0, (60.0, 120.0)
    e = EditedParts.from_parts(["upper_body"])
    p = plan(src, first, span, e, 20.0)
    c, t = p.constraints, p.times
    assert np.isclose(t[np.argmin(np.abs(t - 60))], 60.0)  # the grid starts on the range's first frame
    assert t[0] >= first - 1e-9 and t[-1] <= first + src.num_frames - 1 + 1e-9
    assert t[0] <= 60 - 2 * fps + fps / 20 and t[-1] >= 120 + 2 * fps - fps / 20  # two seconds of context
    # free: the range and the model frames up to the scene frames next to it; the source from those on
    inside = (t > 60 - 1 + 1e-9) & (t < 120 + 1 - 1e-9)
    assert c.mask[~inside][:, POSE].all()  # whole poses outside
    edited, kept = joint_columns(e.joints), joint_columns(e.kept_joints)
    assert not c.mask[inside][:, edited].any()
    assert c.mask[inside][:, kept].all() and c.mask[inside][:, ROOT].all()
    # known values are the source at those times (exact where a model frame falls on a scene frame)
    on = np.isclose(t, np.round(t))
    idx = np.round(t[on] - first).astype(int)
    assert np.array_equal(c.known.root_translation[on], src.root_translation[idx])
    # and back: the known motion read at the scene frames of the range is the source again
    frames = np.arange(60, 121)
    back = to_scene(c.known, p, frames, fps)
    assert np.abs(back.root_translation - src.root_translation[frames - 1]).max() < 2e-3


def test_edited_joints_are_drafted_inside_the_range_but_near_its_ends():
    """The edited joints (and the root path, when edited) follow a prompt-only draft inside the
    range, except for the margins where the model joins it to the source; kept joints never."""
    from inference.generation.edit import DRAFT_MARGIN_SECONDS

    src = _walkish(200, 30.0)
    for parts, root in ((["upper_body"], False), (["lower_body"], True)):
        e = EditedParts.from_parts(parts)
        p = plan(src, 1.0, (60.0, 150.0), e, 20.0)
        d, t = p.constraints.drafted, p.times
        inside = np.flatnonzero((t > 60 - 1 + 1e-9) & (t < 150 + 1 - 1e-9))
        held = np.flatnonzero((d >= 1).any(axis=1))
        margin = int(round(DRAFT_MARGIN_SECONDS * 20))
        assert held[0] == inside[0] + margin and held[-1] == inside[-1] - margin
        assert np.array_equal(np.flatnonzero((d > 0).any(axis=1)), inside)  # the margins blend in
        ramp = d[inside[:margin + 1], joint_columns(e.joints)[0]]
        assert np.all(np.diff(ramp) > 0) and ramp[0] > 0 and ramp[-1] == 1.0
        assert (d[held][:, joint_columns(e.joints)] == 1).all() and not d[:, joint_columns(e.kept_joints)].any()
        assert (d[held][:, ROOT] == 1).all() == root and not (d[p.constraints.mask] > 0).any()
    # a short range keeps at least half of itself held; without a draft, none
    p = plan(src, 1.0, (60.0, 72.0), EditedParts.from_parts(["right_arm"]), 20.0)
    assert 0 < (p.constraints.drafted >= 1).any(axis=1).sum() <= 9
    assert plan(src, 1.0, (60.0, 150.0), e, 20.0, draft_margin_seconds=None).constraints.drafted is None


def test_a_drafted_root_path_starts_where_the_source_is_and_faces_its_way():
    from inference.generation.constraints import apply_draft

    known = _walkish(40, 20.0, seed=1)
    rng = np.random.default_rng(2)
    turn = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), 2.0)
    d_rot = known.rotations.copy()
    d_rot[:, 0] = quat.mul(np.broadcast_to(turn, (40, 4)), d_rot[:, 0])  # the draft faces elsewhere
    d_rot[:, 5] = quat.normalize(rng.normal(size=(40, 4)))
    draft = MotionClip(d_rot, known.root_translation * [2.0, 2.0, 1.0] + [5.0, -3.0, 0.1], 20.0)
    from inference.generation.constraints import joint_mask

    drafted = joint_mask(40, ["pelvis", "left_knee"], root=True, frames=np.arange(10, 30)).astype(float)
    out = apply_draft(known, drafted, draft)
    assert np.allclose(out.root_translation[10, :2], known.root_translation[10, :2])  # starts where it was
    assert np.allclose(out.root_translation[10:30, 2], draft.root_translation[10:30, 2])  # height as drafted
    fwd = quat.rotate(out.rotations[10, 0], np.array([0.0, -1.0, 0.0]))
    want = quat.rotate(known.rotations[10, 0], np.array([0.0, -1.0, 0.0]))
    assert abs(np.arctan2(fwd[1], fwd[0]) - np.arctan2(want[1], want[0])) < 1e-6  # faces the same way
    step = np.linalg.norm(np.diff(out.root_translation[10:30, :2], axis=0), axis=1)
    assert np.allclose(step, np.linalg.norm(np.diff(draft.root_translation[10:30, :2], axis=0), axis=1))
    assert np.array_equal(out.rotations[10:30, 4], draft.rotations[10:30, 4])  # left knee drafted
    assert np.array_equal(out.rotations[:, 5], known.rotations[:, 5])  # not drafted: as known
    assert np.array_equal(out.rotations[:10], known.rotations[:10])


def test_the_motion_after_a_drafted_root_path_moves_with_its_end_when_carried():
    """A root path drafted on frames 10-29 that goes about 2.4 m further sideways and turns a fifth of
    a right angle more than the source: carried, the known motion from frame 30 on stands where the
    draft ends and faces its way (its own path and turns kept, relative to there); not carried, it
    stays where it was."""
    from inference.generation.constraints import apply_draft, joint_mask
    from inference.generation.edit import Carry, carried
    from inference.generation.representation import heading, quat_to_matrix

    def _yaw(q):
        return float(heading(quat_to_matrix(torch.as_tensor(q))))

    known = _walkish(40, 20.0, seed=1)
    turn = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.linspace(0, np.pi / 4, 40))
    d_rot = known.rotations.copy()
    d_rot[:, 0] = quat.mul(turn, d_rot[:, 0])
    d_root = known.root_translation.copy()
    d_root[:, 0] += np.linspace(0, 5.0, 40)
    draft = MotionClip(d_rot, d_root, 20.0)
    drafted = joint_mask(40, ["pelvis", "left_knee"], root=True, frames=np.arange(10, 30)).astype(float)
    kept = apply_draft(known, drafted, draft)
    assert np.array_equal(kept.root_translation[30:], known.root_translation[30:])
    out = apply_draft(known, drafted, draft, carry=True)
    assert np.array_equal(out.root_translation[:10], known.root_translation[:10])
    assert np.array_equal(out.rotations[30:, 1:], known.rotations[30:, 1:])  # local joints as they were
    # from frame 30 on: the known motion, turned and shifted so that its frame 29 is the draft's frame 29
    yaw = _yaw(out.rotations[29, 0]) - _yaw(known.rotations[29, 0])
    assert abs(yaw - (np.pi / 4) * (29 - 10) / 39) < 1e-6  # the draft turned from where it starts
    moved = Carry(yaw, (0.0, 0.0)).apply(known)
    shift = out.root_translation[29, :2] - moved.root_translation[29, :2]
    expect = Carry(yaw, tuple(shift)).apply(known)
    assert np.allclose(out.root_translation[30:], expect.root_translation[30:])
    assert np.allclose(np.abs((out.rotations[30:, 0] * expect.rotations[30:, 0]).sum(-1)), 1.0)
    gap = np.linalg.norm(out.root_translation[30, :2] - out.root_translation[29, :2])
    assert gap < 2 * np.linalg.norm(known.root_translation[30, :2] - known.root_translation[29, :2])  # no jump
    assert np.linalg.norm(out.root_translation[30, :2] - known.root_translation[30, :2]) > 2.0  # it moved


def test_an_edit_plan_carries_the_rest_only_when_the_root_is_edited_in_the_middle():
    from inference.generation.edit import carried

    src = _walkish(200, 30.0)
    mid, to_end = (60.0, 120.0), (60.0, 199.0)
    assert plan(src, 0.0, mid, EditedParts.from_parts(["lower_body"]), 20.0).constraints.carry
    assert not plan(src, 0.0, mid, EditedParts.from_parts(["upper_body"]), 20.0).constraints.carry
    assert not plan(src, 0.0, mid, EditedParts.from_parts(["lower_body"]), 20.0, carry_rest=False).constraints.carry
    p = plan(src, 0.0, mid, EditedParts.from_parts(["lower_body"]), 20.0)
    moved = p.constraints.known.moved_on_ground(0.3, (1.0, -2.0))
    c = carried(moved, p)
    assert abs(c.yaw - 0.3) < 1e-9 and np.allclose(c.shift, (1.0, -2.0)) and c.moves
    assert not carried(p.constraints.known, p).moves  # the result stayed on the source after the range
    p_end = plan(src, 0.0, to_end, EditedParts.from_parts(["lower_body"]), 20.0)
    assert not carried(p_end.constraints.known.moved_on_ground(0.3, (1.0, -2.0)), p_end).moves  # nothing after it


def test_root_is_regenerated_only_when_asked():
    src = _walkish(100, 30.0)
    p = plan(src, 0.0, (20, 60), EditedParts.from_parts(["lower_body"]), 20.0)
    t = p.times
    inside = (t > 20 - 1 + 1e-9) & (t < 60 + 1 - 1e-9)
    assert not p.constraints.mask[inside][:, ROOT].any()
    assert p.constraints.mask[inside][:, joint_columns(["head"])].all()


def test_bad_ranges_and_actions_get_a_clear_message():
    with pytest.raises(EditError, match="one frame"):
        check_span(1, 1, (1, 1))
    with pytest.raises(EditError, match="outside the action"):
        check_span(1, 100, (50, 140))
    with pytest.raises(EditError, match="ends before it starts"):
        check_span(1, 100, (50, 40))
    src = _walkish(60 * 30, 30.0)
    with pytest.raises(EditError, match="Narrow the frame range"):
        plan(src, 0, (0, 60 * 30 - 1), EditedParts.from_parts(["head"]), 20.0, max_seconds=20.0)


def test_edit_with_the_shipped_model_meets_the_source_at_the_range_ends():
    """Regenerated arms start and end on the source's motion: no jump in velocity at the range ends."""
    import torch

    from inference.generation.generate import Generator
    from inference.generation.request import GenerationRequest

    torch.set_num_threads(1)
    fps = 30.0
    src = _walkish(150, fps, seed=3)
    e = EditedParts.from_parts(["right_arm"])
    p = plan(src, 1.0, (50, 100), e, 20.0)
    gen = Generator(None, "cpu")
    req = GenerationRequest("a person waves the right hand", seconds=p.constraints.num_frames / 20.0, scene_fps=fps,
                            steps=4, constraints=p.constraints)
    take = gen.run(req).takes[0]
    # kept joints and the whole poses around the range come back exactly on the model's grid
    keep = p.constraints.mask[:, joint_columns(["left_wrist"])].all(axis=1)
    assert np.array_equal(take.clip.rotations[keep][:, 20], p.constraints.known.rotations[keep][:, 20])
    out = to_scene(take.clip, p, np.arange(50, 101), fps)
    full = src.rotations.copy()
    full[49:100] = out.rotations
    clip = MotionClip(full, src.root_translation, fps)
    pos = clip.positions()
    acc = np.linalg.norm(np.diff(pos, 2, axis=0), axis=-1).max(-1)  # index t-1 <-> frame t
    real = np.linalg.norm(np.diff(src.positions(), 2, axis=0), axis=-1).max(-1)
    for f in (49, 50, 51, 99, 100, 101):  # around the first and the last edited frame
        assert acc[f - 2] < 3 * real.max(), f
    moved = np.abs(out.rotations[:, 21] - src.rotations[49:100, 21]).max()
    assert moved > 0.05, "the right wrist was regenerated"


def test_a_walks_kept_legs_do_not_pull_the_prompted_arm_back_into_the_swing(bandai_bvh):
    """Keep a real walk's legs and regenerate the upper body with "raises the right hand" over 3 s:
    the right hand is up, above the shoulder for a good part of the range and above the head for a
    while (sampled with the legs in view alone, the model swung the arms as the walk does and the
    hand never rose), while the legs keep their keys exactly."""
    import torch

    from inference.body.bvh import read_bvh
    from inference.body.skeleton import JOINT_NAMES
    from inference.generation.generate import Generator
    from inference.generation.request import GenerationRequest
    from inference.retargeting.retarget import bvh_to_canonical

    torch.set_num_threads(1)
    src = bvh_to_canonical(read_bvh(bandai_bvh)).resample(30.0).slice(0, 180)
    e = EditedParts.from_parts(["upper_body"])
    gen = Generator(None, "cpu")
    p = plan(src, 1.0, (45, 135), e, gen.fps)
    req = GenerationRequest("a person raises the right hand", seconds=p.constraints.num_frames / gen.fps,
                            scene_fps=30.0, steps=10, constraints=p.constraints)
    take = gen.run(req).takes[0]
    out = to_scene(take.clip, p, np.arange(45, 136), 30.0)
    pos = out.positions()
    wrist, head, shoulder = (JOINT_NAMES.index(j) for j in ("right_wrist", "head", "right_shoulder"))
    assert (pos[:, wrist, 2] > pos[:, shoulder, 2]).mean() > 0.4
    assert (pos[:, wrist, 2] > pos[:, head, 2]).mean() > 0.25
    legs = [JOINT_NAMES.index(j) for j in e.kept_joints]
    keep = p.constraints.mask[:, joint_columns(e.kept_joints)].all(axis=1)
    assert np.array_equal(take.clip.rotations[keep][:, legs], p.constraints.known.rotations[keep][:, legs])
