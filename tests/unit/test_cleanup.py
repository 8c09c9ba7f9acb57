"""Foot contact cleanup: planted feet stay put, the rest of the motion is left alone."""
import numpy as np
import pytest

from inference.body import quat
from inference.retargeting.cleanup import contact_periods, pin_planted_feet, two_bone_ik
from inference.body.motion import MotionClip
from inference.body.skeleton import CANONICAL, JOINT_NAMES

J = {n: i for i, n in enumerate(JOINT_NAMES)}


def test_two_bone_ik_reaches_reachable_targets_and_bends_the_knee_forward():
    rng = np.random.default_rng(0)
    n = 100
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    rot[:, J["left_hip"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), rng.uniform(-0.5, 0.5, n))
    rot[:, J["left_knee"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), rng.uniform(0.1, 1.0, n))
    root = np.tile([0, 0, 0.9], (n, 1))
    o, p = CANONICAL.forward_kinematics(rot, root_position=root)
    target = p[:, J["left_ankle"]] + rng.normal(0, 0.05, (n, 3))
    reach = np.linalg.norm(target - p[:, J["left_hip"]], axis=-1) < 0.77
    hip, knee = two_bone_ik(o, p, (J["left_hip"], J["left_knee"], J["left_ankle"]), target)
    rot[:, J["left_hip"]] = quat.mul(quat.conj(o[:, 0]), hip)
    rot[:, J["left_knee"]] = quat.mul(quat.conj(hip), knee)
    _, p2 = CANONICAL.forward_kinematics(rot, root_position=root)
    assert reach.sum() > 50
    assert np.linalg.norm(p2[reach, J["left_ankle"]] - target[reach], axis=-1).max() < 1e-6
    # a straight leg pulled up bends its knee forward (-Y), like a person's
    rest = np.tile(quat.IDENTITY, (1, 22, 1))
    o, p = CANONICAL.forward_kinematics(rest, root_position=np.array([[0, 0, 0.96]]))
    hip, _ = two_bone_ik(o, p, (J["left_hip"], J["left_knee"], J["left_ankle"]), p[:, J["left_ankle"]] + [0, 0, 0.15])
    knee = p[0, J["left_hip"]] + quat.rotate(hip[0], CANONICAL.offsets[J["left_knee"]])
    assert knee[1] < -0.1


def test_contact_periods():
    f = np.array([0, 1, 1, 1, 0, 1, 0, 0, 1, 1], bool)
    assert contact_periods(f) == [(1, 4), (8, 10)]


def test_planted_foot_stops_sliding_and_nothing_else_changes():
    n = 40
    t = np.arange(n) / 20.0
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    rot[:, J["left_hip"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), 0.2 + 0.1 * np.sin(3 * t))
    rot[:, J["left_knee"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), np.full(n, 0.9))
    rot[:, J["right_elbow"]] = quat.from_axis_angle(np.array([0.0, 0, 1.0]), np.sin(4 * t))
    root = np.stack([np.zeros(n), -0.15 * t, np.full(n, 0.9)], 1)  # the body drifts: the foot skates
    clip = MotionClip(rot, root, 20.0)
    contacts = np.zeros((n, 4))
    contacts[10:30, :2] = 1.0
    out = pin_planted_feet(clip, contacts)
    before = clip.positions()[:, J["left_ankle"]]
    after = out.positions()[:, J["left_ankle"]]
    slide = lambda p: np.linalg.norm(p[10:30, :2] - p[10, :2], axis=-1).max()
    assert slide(before) > 0.1 and slide(after) < 0.005
    untouched = [j for j in range(22) if j not in (J["left_hip"], J["left_knee"], J["left_ankle"])]
    assert np.allclose(out.rotations[:, untouched], clip.rotations[:, untouched])
    # the lock eases in and out over a few frames (more where the foot had slid further: EASE_ACCEL)
    assert np.allclose(out.rotations[:3], clip.rotations[:3]) and np.allclose(out.rotations[37:], clip.rotations[37:])
    # the foot keeps its world orientation while planted
    o1, _ = clip.forward_kinematics()
    o2, _ = out.forward_kinematics()
    assert quat.quat_angle(o1[10:30, J["left_ankle"]], o2[10:30, J["left_ankle"]]).max() < 0.01


def test_a_restyled_foot_lands_where_the_original_foot_was_planted():
    """Restyle keeps the action's steps: a redrawn leg that plants its foot a shorter stride away is
    moved onto the original's foothold, not held on its own spot (which the kept root path carries
    it away from)."""
    n = 40
    t = np.arange(n) / 20.0
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    rot[:, J["left_knee"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), np.full(n, 0.5))
    root = np.stack([np.zeros(n), -0.15 * t, np.full(n, 0.85)], 1)
    original = MotionClip(rot, root, 20.0)
    styled_rot = rot.copy()  # the redrawn hip swings the foot 10-20 cm off the original's place
    styled_rot[:, J["left_hip"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), 0.15 + 0.1 * np.sin(3 * t))
    styled = MotionClip(styled_rot, root, 20.0)
    contacts = np.zeros((n, 4))
    contacts[10:30, :2] = 1.0
    spot = original.positions()[10:30, J["left_ankle"]].mean(axis=0)
    own = pin_planted_feet(styled, contacts).positions()[10:30, J["left_ankle"]]
    kept = pin_planted_feet(styled, contacts, footholds=original).positions()[10:30, J["left_ankle"]]
    # on the ground plane (a planted ankle is never put below its rest height)
    assert np.linalg.norm(own[:, :2] - spot[:2], axis=-1).min() > 0.05, "its own spot is not the original's"
    assert np.linalg.norm(kept[:, :2] - spot[:2], axis=-1).max() < 0.01
    with pytest.raises(ValueError):
        pin_planted_feet(styled, contacts, footholds=original.slice(0, 30))


def test_half_turn_twist_flips_are_removed_without_moving_any_joint():
    """A spine bone flipping 180 degrees about its own axis every other frame (its child undoing it)
    is made continuous; every joint position stays where it was."""
    from inference.retargeting.cleanup import continuous_twist

    rng = np.random.default_rng(0)
    T = 20
    rot = quat.normalize(np.tile(quat.IDENTITY, (T, 22, 1)) + 0.05 * rng.normal(size=(T, 22, 4)))
    s1, s2 = CANONICAL.index("spine1"), CANONICAL.index("spine2")
    axis = CANONICAL.offsets[s2] / np.linalg.norm(CANONICAL.offsets[s2])
    flip = quat.from_axis_angle(axis, np.pi)
    for t in range(1, T, 2):  # spine1 local turned half a turn about its bone, spine2 turns it back
        rot[t, s1] = quat.mul(rot[t, s1], flip)
        rot[t, s2] = quat.mul(quat.conj(flip), rot[t, s2])
    clip = MotionClip(rot, np.zeros((T, 3)), 20.0)
    fixed = MotionClip(continuous_twist(rot), np.zeros((T, 3)), 20.0)
    step = lambda q: np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(q[1:] * q[:-1], -1)), 0, 1)))  # noqa: E731
    assert step(rot[:, s1]).max() > 170
    assert step(fixed.rotations[:, s1]).max() < 30
    assert np.abs(fixed.positions() - clip.positions()).max() < 1e-9


def test_a_pinned_foot_under_a_straight_leg_does_not_make_the_knee_shiver():
    """A planted foot under a nearly straight leg while the hips shiver by a millimetre (what a
    generated walk does at heel strike): plain IK swings the knee by degrees every frame (the knee
    angle's slope in the hip-ankle distance has no bound at full reach); the lock's soft reach keeps
    the knee as calm as the hips, and the foot within a centimetre of its spot."""
    from inference.retargeting import cleanup

    n = 40
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    rot[:, J["left_knee"]] = quat.from_axis_angle(np.array([1.0, 0, 0]), np.full(n, 0.05))
    shiver = 0.001 * (-1.0) ** np.arange(n)
    root = np.stack([np.zeros(n), np.linspace(0.02, -0.02, n), 0.962 + shiver], 1)  # hips pass over, shiver
    clip = MotionClip(rot, root, 20.0)
    contacts = np.zeros((n, 4))
    contacts[:, :2] = 1.0

    def knee_alternation(out):
        bend = np.array([2 * np.arccos(min(1.0, abs(q[0]))) for q in out.rotations[:, J["left_knee"]]])
        return np.abs(np.diff(bend, 2)[5:-5]).mean()

    hard_before = cleanup.SOFT_REACH
    try:
        cleanup.SOFT_REACH = 0.0
        hard = pin_planted_feet(clip, contacts)
    finally:
        cleanup.SOFT_REACH = hard_before
    soft = pin_planted_feet(clip, contacts)
    assert knee_alternation(soft) < 0.25 * knee_alternation(hard), (knee_alternation(soft), knee_alternation(hard))
    ankle = soft.positions()[:, J["left_ankle"]]
    assert np.linalg.norm(ankle - ankle.mean(axis=0), axis=-1).max() < 0.01


def _crouched_sliding_left_foot(n=40, speed=0.005):
    """A left leg bent as in a step, the hips gliding forward `speed` m a frame: the foot slides with
    them (a generated foot that skates), the foot's angle constant."""
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    x = np.array([1.0, 0, 0])
    rot[:, J["left_hip"]] = quat.from_axis_angle(x, np.full(n, -0.4))
    rot[:, J["left_knee"]] = quat.from_axis_angle(x, np.full(n, 0.8))
    rot[:, J["left_ankle"]] = quat.from_axis_angle(x, np.full(n, -0.4))
    _, bent = CANONICAL.forward_kinematics(rot[:1])
    drop = bent[0, J["left_ankle"], 2] - CANONICAL.rest_pose()[1][J["left_ankle"], 2]
    root = np.stack([np.zeros(n), -speed * np.arange(n), np.full(n, 0.96 - drop)], 1)
    return MotionClip(rot, root, 20.0)


@pytest.mark.parametrize("heels", [[(4, 15)], [(4, 12), (24, 32)]])
def test_the_ankle_glides_where_the_heel_lands_or_lifts_under_a_planted_toe(heels):
    """The toe planted for 2 s while the heel comes down and lifts again (once, or twice) on a foot that
    slides 5 mm a frame, as generated feet do: the toe's spot (its mean place over the contact) and
    the heel's (over its own) are centimetres apart. The pinned ankle moves from one to the other over
    several frames instead of jumping there in one (which popped the knee at every hand-over), and
    holds still once the heel is down."""
    from inference.retargeting.cleanup import HANDOVER_GLIDE

    clip = _crouched_sliding_left_foot()
    n = clip.num_frames
    contacts = np.zeros((n, 4))
    contacts[:, 1] = 1.0  # left toe
    for a, b in heels:
        contacts[a:b, 0] = 1.0  # left heel (ankle)
    out = pin_planted_feet(clip, contacts)
    ankle = out.positions()[:, J["left_ankle"]]
    step = np.linalg.norm(np.diff(ankle, axis=0), axis=-1)
    gap = max(0.005 * abs((n - 1) / 2 - (a + b - 1) / 2) for a, b in heels)  # toe's spot to a heel's
    assert gap > 0.03
    assert step.max() < 0.4 * gap, np.round(step, 3)
    a, b = heels[0]
    assert np.ptp(ankle[a + HANDOVER_GLIDE:b], axis=0).max() < 0.002


@pytest.mark.parametrize("case", ["short swing between far spots", "let go far from the motion's foot"])
def test_a_foot_pinned_far_from_the_motion_is_let_go_without_a_pop(case):
    """Generated feet slide while they count as planted, so the spot a foot is pinned to can be tens of
    centimetres from where the motion has it when the contact ends. Letting it go (or carrying it to
    the next spot over a 3-frame swing) in a fixed few frames jerked the knee. The ankle's largest
    acceleration stays under 0.04 m/frame^2 at 20 fps, below the largest of every real test take
    keyed by the bench (0.043-0.12), and the foot still holds its spot mid-plant."""
    clip = _crouched_sliding_left_foot(n=60, speed=0.02)  # 1.2 m over the clip
    contacts = np.zeros((clip.num_frames, 4))
    if case.startswith("short"):
        contacts[:22, :2] = contacts[25:, :2] = 1.0
    else:
        contacts[5:35, :2] = 1.0
    out = pin_planted_feet(clip, contacts)
    ankle = out.positions()[:, J["left_ankle"]]
    assert np.ptp(ankle[10:18], axis=0).max() < 0.002  # held mid-plant
    assert np.ptp(clip.positions()[10:18, J["left_ankle"]], axis=0).max() > 0.1  # where the motion slid
    acc = np.linalg.norm(np.diff(out.positions(), 2, axis=0), axis=-1)
    assert acc.max() < 0.04, (acc.max(), acc.max(axis=0).argmax())


def test_a_foot_that_travels_while_flagged_planted_is_not_pinned():
    """A "planted" toe that slides 3 cm a frame for 3 s (slow enough for the lock's speed limit, 1.8 m
    in all) travels; pinning it to its mean place held the foot up to 90 cm from the motion's, further
    than a leg reaches. Such a contact is left to the motion, while a short slide is still pinned."""
    clip = _crouched_sliding_left_foot(n=60, speed=0.03)
    contacts = np.zeros((60, 4))
    contacts[:, 1] = 1.0  # the left toe, flagged the whole clip
    before = clip.positions()[:, J["left_ankle"]]
    after = pin_planted_feet(clip, contacts).positions()[:, J["left_ankle"]]
    assert np.linalg.norm(after - before, axis=-1).max() < 0.01
    contacts[:] = 0.0
    contacts[20:30, 1] = 1.0  # 30 cm of sliding: pinned
    held = pin_planted_feet(clip, contacts).positions()[:, J["left_ankle"]]
    assert np.ptp(held[22:28], axis=0).max() < 0.01 < np.ptp(before[22:28], axis=0).max()
