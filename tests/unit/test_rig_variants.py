"""Retargeting onto rigs that differ from the canonical one the way real rigs do: A-pose, bone rolls,
1 to 5 spine segments, no collarbones, twist bones, other proportions, feet outside the leg chain.
A real walk must land with
bone directions within 5 degrees on average (10 for the worst bone), planted feet staying under
1 cm, and rig -> canonical -> rig giving back the same rotations."""
import numpy as np
import pytest

from inference.body import quat
from inference.body.bvh import read_bvh
from inference.body.motion import MotionClip, MotionError
from inference.retargeting.retarget import PLANTED_ANKLE_LIFT, BoneMap, RestAlignment, bvh_to_canonical
from inference.retargeting.retarget_quality import measure
from inference.body.skeleton import CANONICAL, Skeleton


def _build(joints):
    """Skeleton from [(name, parent name or None, world rest position)], with random bone rolls."""
    rng = np.random.default_rng(len(joints))
    names = [n for n, _, _ in joints]
    parents = [-1 if p is None else names.index(p) for _, p, _ in joints]
    world = np.array([w for _, _, w in joints], dtype=float)
    frames = quat.normalize(rng.normal(size=(len(joints), 4)))  # each bone's own axes, like Blender rolls
    offsets, rests = [], []
    for j, p in enumerate(parents):
        if p < 0:
            offsets.append(world[j])
            rests.append(frames[j])
        else:
            offsets.append(quat.rotate(quat.conj(frames[p]), world[j] - world[p]))
            rests.append(quat.mul(quat.conj(frames[p]), frames[j]))
    return Skeleton(tuple(names), tuple(parents), np.array(offsets), np.array(rests))


def _canonical_world():
    _, pos = CANONICAL.rest_pose()
    return {n: pos[i] for i, n in enumerate(CANONICAL.names)}, {n: (CANONICAL.names[p] if p >= 0 else None)
                                                                 for n, p in zip(CANONICAL.names, CANONICAL.parents)}


def _variant(kind):
    w, parent = _canonical_world()
    joints = [(n, parent[n], w[n].copy()) for n in CANONICAL.names]
    if kind == "a_pose":
        for side, s in (("left", 1), ("right", -1)):
            sh = w[f"{side}_shoulder"]
            down = quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), s * np.radians(45))
            joints = [(n, p, sh + quat.rotate(down, x - sh) if n in (f"{side}_elbow", f"{side}_wrist") else x)
                      for n, p, x in joints]
    elif kind == "no_collar":
        joints = [(n, "spine3" if n.endswith("_shoulder") else p, x) for n, p, x in joints if not n.endswith("collar")]
    elif kind == "one_spine":
        joints = [(n, "pelvis" if p in ("spine1", "spine2") and n not in ("spine1", "spine2") else p, x)
                  for n, p, x in joints if n not in ("spine1", "spine2")]
    elif kind == "five_spine":
        extra = []
        for n, p, x in joints:
            if n == "spine2":  # two more joints between spine1 and spine2
                a, b = w["spine1"], w["spine2"]
                extra += [("spineA", "spine1", a + (b - a) / 3), ("spineB", "spineA", a + 2 * (b - a) / 3)]
                extra.append((n, "spineB", x))
            else:
                extra.append((n, p, x))
        joints = extra
    elif kind == "twist_bones":
        for side in ("left", "right"):
            mid = 0.5 * (w[f"{side}_shoulder"] + w[f"{side}_elbow"])
            joints.append((f"{side}_upperarm_twist", f"{side}_shoulder", mid))
            joints.append((f"{side}_thigh_twist", f"{side}_hip", 0.5 * (w[f"{side}_hip"] + w[f"{side}_knee"])))
    elif kind == "long_legs_big":
        # 1.3x bigger, legs 15% longer on top of that (in cm, like an FBX rig)
        joints = [(n, p, 130 * x) for n, p, x in joints]
        hip_z = 130 * w["left_hip"][2]
        joints = [(n, p, np.array([x[0], x[1], x[2] * 1.15 - hip_z * 0.15]) if x[2] < hip_z else x)
                  for n, p, x in joints]
        joints = [(n, p, x + [0, 0, hip_z * 0.15]) for n, p, x in joints]
    elif kind == "ik_feet":
        # game rigs (RobotExpressive): a root bone on the floor carries the hips and, as IK targets,
        # the feet, which are not children of the shins
        joints = [("root", None, np.zeros(3))] + [
            (n, "root" if n in ("pelvis", "left_ankle", "right_ankle") else p, x) for n, p, x in joints]
    return _build(joints)


@pytest.fixture(scope="module")
def walk(bandai_bvh):
    return bvh_to_canonical(read_bvh(bandai_bvh)).resample(30)


@pytest.mark.parametrize("kind", ["a_pose", "no_collar", "one_spine", "five_spine", "twist_bones", "long_legs_big",
                                  "ik_feet"])
def test_walk_lands_on_rig_variants(walk, kind):
    sk = _variant(kind)
    bone_map = BoneMap(kind, {n: n for n in CANONICAL.names if n in sk.names}, "Z")
    q = measure(RestAlignment.build(sk, bone_map), walk)
    assert q.dir_err_mean_deg < 5 and q.dir_err_worst_bone_deg < 10, q
    assert q.foot_slide_cm < 1.0, q
    assert q.round_trip_err < 1e-3, q


def test_a_pose_arms_still_hang_like_the_source(walk):
    """The A-pose rig's rest differs by 45 degrees at the shoulder; the motion must not inherit that."""
    sk = _variant("a_pose")
    align = RestAlignment.build(sk, BoneMap("a", {n: n for n in CANONICAL.names}, "Z"))
    rot, trans = align.from_canonical(walk)
    _, ps = sk.forward_kinematics(rot, trans)
    pc = walk.positions()
    i = CANONICAL.index
    for side in ("left", "right"):
        src = pc[:, i(f"{side}_wrist")] - pc[:, i(f"{side}_shoulder")]
        rig = ps[:, sk.index(f"{side}_wrist")] - ps[:, sk.index(f"{side}_shoulder")]
        assert quat.angle_between(src, rig).mean() < 2.0


def test_feet_outside_the_leg_chain_stay_on_the_end_of_the_shins(walk):
    sk = _variant("ik_feet")
    align = RestAlignment.build(sk, BoneMap("ik", {n: n for n in CANONICAL.names}, "Z"))
    assert sorted(sk.names[b] for b, _ in align.detached()) == ["left_ankle", "right_ankle"]
    rot, trans = align.from_canonical(walk)
    rot, trans = align.replant_feet_on_rig(rot, trans, walk)
    _, ps = sk.forward_kinematics(rot, trans)
    _, p0 = sk.rest_pose()
    for side in ("left", "right"):
        k, a = sk.index(f"{side}_knee"), sk.index(f"{side}_ankle")
        shin = np.linalg.norm(ps[:, a] - ps[:, k], axis=-1)
        assert np.abs(shin - np.linalg.norm(p0[a] - p0[k])).max() < 1e-6
        assert np.ptp(ps[:, a, 1]) > 0.3  # and the foot walks with the body


def test_feet_stand_at_the_rigs_own_ankle_height(walk):
    """A rig whose ankles stand 5 cm higher than the canonical proportions give (thick soles, short
    shins): its planted ankles land at its own rest ankle height, neither floating nor sinking."""
    w, parent = _canonical_world()
    lift = np.array([0.0, 0.0, 0.05])
    joints = [(n, parent[n], w[n] + lift if n.endswith(("ankle", "foot")) else w[n].copy()) for n in CANONICAL.names]
    sk = _build(joints)
    align = RestAlignment.build(sk, BoneMap("high ankles", {n: n for n in CANONICAL.names}, "Z"))
    rot, trans = align.replant_feet_on_rig(*align.from_canonical(walk), walk)
    _, ps = sk.forward_kinematics(rot, trans)
    _, p0 = sk.rest_pose()
    _, pc0 = CANONICAL.rest_pose()
    pc = walk.positions()
    for side in ("left", "right"):
        a, c = sk.index(f"{side}_ankle"), CANONICAL.index(f"{side}_ankle")
        # as high above its rest height as the source's planted ankle is above where a flat canonical
        # foot has it (the data's flat foot: PLANTED_ANKLE_LIFT above the canonical rest ankle)
        want = p0[a, 2] + (np.percentile(pc[:, c, 2], 5) - pc0[c, 2] - PLANTED_ANKLE_LIFT) / align.scale
        planted = np.percentile(ps[:, a, 2], 5)
        assert abs(planted - want) < 0.01, (side, planted, want)
    q = measure(align, walk)
    assert q.round_trip_err < 1e-3


def test_root_motion_split_keeps_the_body_and_hands_the_travel_to_the_rig():
    """"Object" and "in place" hold the hips over frame 0's ground point (height and sway kept); the
    travel comes back in the rig's own units: a rig twice as tall, in centimetres."""
    from inference.retargeting.retarget import split_root_motion

    n = 30
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    root = np.stack([np.linspace(0, 0.5, n), np.linspace(0, -2.0, n), 0.9 + 0.02 * np.sin(np.arange(n))], 1)
    clip = MotionClip(rot, root, 30.0)
    same, none = split_root_motion(clip, "HIP")
    assert same is clip and none is None
    held, travel = split_root_motion(clip, "OBJECT")
    assert np.allclose(held.root_translation[:, :2], root[0, :2]) and np.array_equal(held.root_translation[:, 2], root[:, 2])
    assert np.allclose(travel, root[:, :2] - root[0, :2])
    w, parent = _canonical_world()
    big = _build([(nm, parent[nm], w[nm] * 200.0) for nm in CANONICAL.names])  # twice as tall, centimetres
    align = RestAlignment.build(big, BoneMap("big", {nm: nm for nm in CANONICAL.names}, "Z"))
    d = align.travel_in_rig(travel)
    assert np.allclose(d[:, :2], travel * 200.0) and np.allclose(d[:, 2], 0.0)
    with pytest.raises(MotionError):
        split_root_motion(clip, "SIDEWAYS")


def _standing_rig():
    """A rig of other proportions (ankles 4 cm higher, longer feet) standing on its floor: aligned by the sole."""
    w, parent = _canonical_world()
    joints = [(n, parent[n], w[n] + [0.0, -0.03 if n.endswith("_foot") else 0.0, 0.04 if n.endswith("_ankle") else 0.0])
              for n in CANONICAL.names]
    sk = _build(joints)
    align = RestAlignment.build(sk, BoneMap("standing", {n: n for n in CANONICAL.names}, "Z"))
    assert align.by_sole, "a standing rig is aligned by the sole"
    return sk, align


def _sole_tilt_deg(align, sk, clip):
    """Per frame where the clip plants heel and toe together: how far each rig foot's sole (its
    rest-pose up, carried by the ankle bone) is from pointing straight up, degrees."""
    from inference.retargeting.cleanup import contacts_from_motion
    from inference.body.skeleton import CONTACT_PLANTED

    rot, trans = align.from_canonical(clip)
    ws, _ = sk.forward_kinematics(rot, trans)
    w0, _ = sk.rest_pose()
    flat = contacts_from_motion(clip, CONTACT_PLANTED)
    out = []
    for side, (h, t) in (("left", (0, 1)), ("right", (2, 3))):
        a = sk.index(f"{side}_ankle")
        f = (flat[:, h] > 0.5) & (flat[:, t] > 0.5)
        up_local = quat.rotate(quat.conj(w0[a]), np.array([0.0, 0.0, 1.0]))
        out.append(quat.angle_between(quat.rotate(ws[f, a], up_local), np.array([0.0, 0.0, 1.0])))
    return np.concatenate(out)


def test_a_source_with_another_flat_foot_lands_with_soles_flat(walk):
    """Sources disagree on where the foot bone points while the sole is flat (CMU's flat foot is 20
    degrees from Bandai-Namco's). A walk whose ankles carry 12 extra degrees of pitch and whose toes
    are bent 17 degrees while flat lands on a standing rig with its planted soles flat and its toes
    at rest, after `level_feet`; without it the soles tilt by those 12 degrees."""
    sk, align = _standing_rig()
    rot = walk.rotations.copy()
    pitch = quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.radians(12.0))
    bend = quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.radians(-17.0))
    for side in ("left", "right"):
        a, t = CANONICAL.index(f"{side}_ankle"), CANONICAL.index(f"{side}_foot")
        rot[:, a] = quat.mul(rot[:, a], pitch)
        rot[:, t] = quat.mul(rot[:, t], bend)
    other = MotionClip(rot, walk.root_translation.copy(), walk.fps)
    assert np.median(_sole_tilt_deg(align, sk, other)) > 8.0
    level = align.level_feet(other)
    assert np.median(_sole_tilt_deg(align, sk, level)) < 3.0
    for side in ("left", "right"):  # toes back to rest while flat, and the rest of the body untouched
        t = CANONICAL.index(f"{side}_foot")
        assert np.median(np.degrees(2 * np.arccos(np.clip(np.abs(level.rotations[:, t, 0]), 0, 1)))) < 8.0
    keep = [j for j, n in enumerate(CANONICAL.names) if not n.endswith(("_ankle", "_foot"))]
    assert np.allclose(level.rotations[:, keep], other.rotations[:, keep], atol=1e-12)
    # planted ankles stand where a flat canonical foot has them: the root moved by a few mm at most
    assert np.abs(level.root_translation - other.root_translation).max() < 0.02


def test_level_feet_leaves_alone_what_it_cannot_read(walk):
    """No change on a skeleton not aligned by the sole (the canonical one), nor for a clip that
    never plants a flat foot (a jump held in the air)."""
    canonical = RestAlignment.build(CANONICAL, BoneMap("c", {n: n for n in CANONICAL.names}, "Z"))
    assert canonical.level_feet(walk) is walk
    _, align = _standing_rig()
    air = MotionClip(walk.rotations, walk.root_translation + [0.0, 0.0, 0.5], walk.fps)
    out = align.level_feet(air)
    assert np.allclose(out.rotations, air.rotations, atol=1e-12) and np.array_equal(out.root_translation, air.root_translation)


def test_a_longer_foot_pushes_off_with_the_legs_on_the_source(walk, monkeypatch):
    """A rig foot longer than the source's, turned by the source's ankle as the heel lifts, would
    sink its toe; the foot lock holds the toe by bending the whole leg. The foot pitches a few
    degrees instead: while only the toe is planted, thigh and shin stay nearer the source's
    directions, the toe still stands at its planted height, and the foot turns no more than the cap."""
    from inference.retargeting import retarget
    from inference.retargeting.cleanup import contact_periods, contacts_from_motion
    from inference.body.skeleton import CONTACT_RIG

    w, parent = _canonical_world()
    # feet 5 cm longer than the canonical ones (the Quaternius characters' are 3 cm longer)
    sk = _build([(n, parent[n], w[n] + [0.0, -0.05 if n.endswith("_foot") else 0.0, 0.0]) for n in CANONICAL.names])
    align = RestAlignment.build(sk, BoneMap("long feet", {n: n for n in CANONICAL.names}, "Z"))
    assert align.by_sole
    clip = align.level_feet(walk)
    flags = contacts_from_motion(clip, CONTACT_RIG)

    def landed(cap):
        monkeypatch.setattr(retarget, "TOE_PITCH_MAX_DEG", cap)
        rot, trans = align.replant_feet_on_rig(*align.from_canonical(clip), clip)
        ws, ps = sk.forward_kinematics(rot, trans)
        return ws, ps, align.bone_direction_errors(rot, trans, clip)

    cap = retarget.TOE_PITCH_MAX_DEG
    ws0, ps0, held_by_legs = landed(0.0)
    ws1, ps1, pitched = landed(cap)
    checked = 0
    for side, (ca, ct) in (("left", (0, 1)), ("right", (2, 3))):
        toe_only = (flags[:, ct] > 0.5) & (flags[:, ca] < 0.5)
        assert toe_only.sum() >= 4, "the walk pushes off on its toes"
        legs = [f"{side}_hip->{side}_knee", f"{side}_knee->{side}_ankle"]
        before = np.mean([held_by_legs[b][toe_only].mean() for b in legs])
        after = np.mean([pitched[b][toe_only].mean() for b in legs])
        assert after < 0.7 * before, (side, before, after)
        # the planted toe is held at least as firmly as before (how far it strays from its spot
        # over each contact)
        t, a = sk.index(f"{side}_foot"), sk.index(f"{side}_ankle")
        stray = np.array([[np.linalg.norm(ps[s0:e, t] - ps[s0:e, t].mean(0), axis=-1).max() for ps in (ps0, ps1)]
                          for s0, e in contact_periods(flags[:, ct] > 0.5)])
        assert stray[:, 1].mean() <= stray[:, 0].mean() and stray[:, 1].max() < 0.012, stray
        turn = quat.angle_between(quat.rotate(ws0[:, a], np.array([0.0, 1.0, 0.0])),
                                  quat.rotate(ws1[:, a], np.array([0.0, 1.0, 0.0])))  # degrees
        assert turn.max() < cap + 1.0
        checked += 1
    assert checked == 2


def test_other_leg_proportions_keep_the_legs_and_move_the_hips(walk):
    """A rig 1.3x bigger with legs 15 % longer on top (in cm, like an FBX rig): posed by the source's
    directions, its planted ankles drift over each contact, and the lock alone would bend the legs
    to hold them. Fitting the travel and the hips to the rig's stride keeps the legs nearer the
    source's directions while the feet stay planted, without jerking the hips or changing the path
    by more than a few percent."""
    from inference.retargeting import retarget
    from inference.retargeting.cleanup import contact_periods, contacts_from_motion
    from inference.body.skeleton import CONTACT_PLANTED

    sk = _variant("long_legs_big")
    align = RestAlignment.build(sk, BoneMap("long legs", {n: n for n in CANONICAL.names}, "Z"))
    clip = align.level_feet(walk)
    results = {}
    for shift in (False, True):
        fitted = align.fit_stride(clip) if shift else clip
        r, t = align.replant_feet_on_rig(*align.from_canonical(fitted), fitted, planted=clip)
        _, ps = sk.forward_kinematics(r, t)
        results[shift] = (ps * align.scale, align.bone_direction_errors(r, t, clip))  # canonical metres
    legs = [k for k in results[True][1] if "hip->" in k or "knee->" in k]
    before = np.mean([results[False][1][k].mean() for k in legs])
    after = np.mean([results[True][1][k].mean() for k in legs])
    assert after < 0.6 * before, (before, after)
    contacts = contacts_from_motion(clip, CONTACT_PLANTED)
    pelvis = sk.index("pelvis")
    for shift in (False, True):
        ps = results[shift][0]
        for col, name in ((0, "left_ankle"), (2, "right_ankle")):
            a = sk.index(name)
            for s0, e in contact_periods(contacts[:, col] > 0.5, min_frames=3):
                assert np.linalg.norm(ps[s0:e, a, :2] - ps[s0, a, :2], axis=-1).max() < 0.01, (shift, name, s0)
    acc = {s: np.percentile(np.linalg.norm(np.diff(results[s][0][:, pelvis], 2, axis=0), axis=-1), 99)
           for s in (False, True)}
    assert acc[True] < 1.15 * acc[False], acc
    path = results[False][0][:, pelvis]
    travel = np.linalg.norm(path[-1, :2] - path[0, :2])
    moved = np.linalg.norm(results[True][0][:, pelvis] - path, axis=-1).max()
    leg = CANONICAL.chain_length(["left_hip", "left_knee", "left_ankle"])
    assert moved <= retarget.HIP_TRAVEL_FIT_MAX * travel + retarget.HIP_SHIFT_MAX * leg, (moved, travel)
