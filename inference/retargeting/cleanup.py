"""Foot contact cleanup: planted feet stay planted.

Where a foot is in contact with the ground (from the model's contact channels, or any (T, 4)
contact signal), its ankle is pinned to one spot per contact period and the leg is re-solved with
two-bone IK (hip, knee); the ankle keeps its world orientation, so the foot's angle is unchanged.
Frames next to a contact period blend back to the original motion, so nothing pops.
"""
from __future__ import annotations

import numpy as np

from ..body import quat
from ..body.motion import MotionClip
from ..body.skeleton import CANONICAL, CONTACT_PIN, JOINT_NAMES, ContactThresholds

_LEGS = {
    side: tuple(JOINT_NAMES.index(f"{side}_{j}") for j in ("hip", "knee", "ankle", "foot"))
    for side in ("left", "right")
}
_CONTACT_COLUMNS = {"left": (0, 1), "right": (2, 3)}
_ANKLE_REST = CANONICAL.rest_pose()[1][JOINT_NAMES.index("left_ankle"), 2]


def contact_periods(flags: np.ndarray, min_frames: int = 2) -> list[tuple[int, int]]:
    """[start, stop) runs of True at least `min_frames` long."""
    periods, start = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start >= min_frames:
                periods.append((start, i))
            start = None
    return periods


def _median3(x: np.ndarray) -> np.ndarray:
    if len(x) < 3:
        return x
    padded = np.concatenate([x[:1], x, x[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def two_bone_ik(
    orient: np.ndarray,
    pos: np.ndarray,
    legs: tuple[int, int, int],
    target: np.ndarray,
    knee_offset: np.ndarray | None = None,
    ankle_offset: np.ndarray | None = None,
    forward: np.ndarray = np.array([0.0, -1.0, 0.0]),
    soft: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """New world orientations of hip and knee (N, 4) that put the ankle on `target` (N, 3).

    The knee bends in its current plane (a straight leg bends towards `forward`); out-of-reach
    targets are approached as far as the leg allows. knee_offset / ankle_offset: the knee's
    translation in the hip's frame and the ankle's in the knee's (default: the canonical skeleton's).

    soft: a share of the leg's length (soft IK). Goals farther from the hip than the leg's length
    less this share are pulled in smoothly (an exponential ease onto full reach), so that the
    last millimetres of reach no longer swing the knee through degrees: near full extension the
    knee angle's slope in the hip-ankle distance grows without bound, and a hip that shivers by a
    millimetre over a planted foot would make the knee alternate frame to frame. The price: a goal
    at the leg's full length is met about 0.37 x soft x length short.
    """
    h, k, a = legs
    knee_offset = CANONICAL.offsets[k] if knee_offset is None else knee_offset
    ankle_offset = CANONICAL.offsets[a] if ankle_offset is None else ankle_offset
    pa, pb, pc = pos[:, h], pos[:, k], pos[:, a]
    lab = np.linalg.norm(pb - pa, axis=-1)
    lcb = np.linalg.norm(pb - pc, axis=-1)
    if soft > 0:
        zone = soft * (lab + lcb)
        start = lab + lcb - zone
        d = target - pa
        dist = np.linalg.norm(d, axis=-1)
        eased = np.where(dist > start, start + zone * (1 - np.exp(-(dist - start) / np.maximum(zone, 1e-12))), dist)
        target = pa + d * (eased / np.maximum(dist, 1e-12))[:, None]
    lat = np.clip(np.linalg.norm(target - pa, axis=-1), np.abs(lab - lcb) + 1e-4, lab + lcb - 1e-4)

    def angle(u, v):
        cu = u / np.linalg.norm(u, axis=-1, keepdims=True)
        cv = v / np.linalg.norm(v, axis=-1, keepdims=True)
        return np.arccos(np.clip((cu * cv).sum(-1), -1, 1))

    ac_ab0 = angle(pc - pa, pb - pa)
    ba_bc0 = angle(pa - pb, pc - pb)
    ac_ab1 = np.arccos(np.clip((lcb**2 - lab**2 - lat**2) / (-2 * lab * lat), -1, 1))
    ba_bc1 = np.arccos(np.clip((lat**2 - lab**2 - lcb**2) / (-2 * lab * lcb), -1, 1))
    axis = np.cross(pc - pa, pb - pa)
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    fallback = np.cross(pc - pa, np.broadcast_to(forward, pa.shape))
    fallback = fallback / np.maximum(np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-12)
    axis = np.where(n > 1e-6 * np.maximum(lab, 1e-9)[:, None] ** 2, axis / np.maximum(n, 1e-12), fallback)
    r_hip = quat.from_axis_angle(axis, ac_ab1 - ac_ab0)
    r_knee = quat.from_axis_angle(axis, ba_bc1 - ba_bc0)
    hip = quat.mul(r_hip, orient[:, h])
    knee = quat.mul(quat.mul(r_hip, r_knee), orient[:, k])
    # where the ankle is now, then swing the whole leg about the hip onto the target
    knee_pos = pa + quat.rotate(hip, knee_offset)
    ankle_pos = knee_pos + quat.rotate(knee, ankle_offset)
    swing = quat.between(ankle_pos - pa, target - pa)  # normalises its inputs
    return quat.mul(swing, hip), quat.mul(swing, knee)


MAX_PLANTED_SPEED = 0.8
"""Leg lengths per second. A "planted" foot that moves faster than this on average over its contact
is not planted (a contact flag on a foot in full stride): pinning it would drag the leg over a
metre and snap it free at the end. Slower slides (skating) are what locking is for."""
PIN_MAX_SPEED = 1.0
"""The same limit for the canonical foot lock after sampling (`pin_planted_feet`), higher: the model's
feet slide faster than a retargeted take's, many of them at 0.8-1 leg length per second (validation
figures at `skeleton.CONTACT_PIN`). The rig-side relock keeps `MAX_PLANTED_SPEED`."""


def _ankle_targets(flag_a, flag_t, pos_a, pos_t, rest_a, rest_t, blend_frames, max_step=np.inf, spots=None,
                   glide_frames=0, glide_step=0.02, ease_accel=None, max_reach=np.inf):
    """Per-frame ankle goal and weight: an ankle that is planted stays on its spot; while only the toe
    is planted (heel off), the ankle goes where the planted toe and the current foot angle put it.
    Contacts over which the joint moves more than `max_step` per frame on average are left alone.
    spots: optional (ankle, toe) positions (T, 3) of another motion whose footholds these are (a
    restyled action keeps the original's); by default each contact's own mean position.
    glide_frames, glide_step: see the hand-over below (`lock_feet_skeleton`).
    ease_accel: most acceleration (per frame squared) the easing in and out of a plant adds to the
    goal; None: every ease lasts `blend_frames`.
    max_reach: contacts over which the joint strays further than this from its mean place are left
    alone (the foot travels, it is not planted)."""
    anchor_a, anchor_t = (pos_a, pos_t) if spots is None else spots
    T = len(flag_a)
    foot = pos_t - pos_a
    target = pos_a.copy()
    weight = np.zeros(T)
    periods = []

    def contacts(flags, pos):
        return [(s, e) for s, e in contact_periods(flags)
                if np.linalg.norm(np.diff(pos[s:e, :2], axis=0), axis=1).mean() <= max_step
                and np.linalg.norm(pos[s:e, :2] - pos[s:e, :2].mean(axis=0), axis=1).max() <= max_reach]

    for s, e in contacts(flag_t, anchor_t):
        spot = anchor_t[s:e].mean(axis=0)
        spot[2] = max(spot[2], rest_t)
        periods.append((s, e, "toe", spot))
    for s, e in contacts(flag_a, anchor_a):
        spot = anchor_a[s:e].mean(axis=0)
        spot[2] = max(spot[2], rest_a)
        periods.append((s, e, "ankle", spot))

    def goal(kind, spot, f):
        return spot if kind == "ankle" else spot - foot[f]

    disp = np.zeros_like(target)  # where each planted frame moves the ankle
    owner = np.full(T, -1)
    for kind in ("toe", "ankle"):  # ankle periods win where both feet joints are planted
        for i, (s, e, k, spot) in enumerate(periods):
            if k == kind:
                owner[s:e] = i
    planted = owner >= 0
    for f in np.flatnonzero(planted):
        _, _, k, spot = periods[owner[f]]
        disp[f] = goal(k, spot, f) - pos_a[f]
    # Where one planted period hands over to another without a free frame between them (the heel
    # comes down or lifts while the toe is planted), the goal glides from the old spot to the new
    # one instead of jumping there in one frame: over as many frames (up to `glide_frames`) as keep
    # each frame's move under `glide_step` metres. Spots that agree (a real step) are not blurred.
    for h in np.flatnonzero(planted[1:] & planted[:-1] & (owner[1:] != owner[:-1])) + 1:
        _, _, k0, spot0 = periods[owner[h - 1]]
        jump = np.linalg.norm(goal(k0, spot0, h) - pos_a[h] - disp[h])
        n = min(glide_frames, max(0, int(np.ceil(1.5 * jump / glide_step)) - 1))
        f = h
        while f < T and owner[f] == owner[h] and f - h < n:
            x = (f - h + 1) / (n + 1)
            disp[f] += (1 - x * x * (3 - 2 * x)) * (goal(k0, spot0, f) - pos_a[f] - disp[f])
            f += 1
    # Free frames ease the move in and out; a swing too short to ease out and in again blends from
    # one planted spot's move to the next, so the goal never jumps between two spots. With
    # `ease_accel`, an ease lasts as long as keeps the acceleration it adds under `ease_accel` (a
    # foot pinned far from where the motion put it is let go over more frames), and a short swing
    # between two far-apart spots borrows frames from the ends of the plants on either side.
    def frames_for(move):  # intervals over which a smoothstep of `move` stays under ease_accel
        if ease_accel is None:
            return blend_frames + 1
        return max(blend_frames + 1, int(np.ceil(np.sqrt(6.0 * np.linalg.norm(move) / ease_accel))))

    plants = contact_periods(planted, min_frames=1)
    eased = disp.copy()
    for a, b in contact_periods(~planted, min_frames=1):
        left, right = (a - 1 if a > 0 else None), (b if b < T else None)
        out_n = frames_for(disp[left]) if left is not None else 0
        in_n = frames_for(disp[right]) if right is not None else 0
        if left is not None and right is not None and b - a <= out_n + in_n - 2:
            need = 0 if ease_accel is None else frames_for(disp[right] - disp[left]) - (right - left)
            if need > 0:  # borrow frames from the ends of the plants, leaving each plant a frame of its own
                room_l = (next(e - s for s, e in plants if e == a) - 1) // 2
                room_r = (next(e - s for s, e in plants if s == b) - 1) // 2
                take_l = min(room_l, max(need // 2, need - room_r))
                left, right = left - take_l, right + min(room_r, need - take_l)
            for f in range(left + 1, right):
                x = (f - left) / (right - left)
                eased[f] = disp[left] + x * x * (3 - 2 * x) * (disp[right] - disp[left])
            continue
        for f in range(a, b):
            for edge, n, d in ((left, out_n, f - (left or 0)), (right, in_n, (right or 0) - f)):
                if edge is not None and d < n:
                    x = 1.0 - d / n
                    eased[f] += x * x * (3 - 2 * x) * disp[edge]
    disp = eased
    weight = (np.abs(disp).sum(axis=1) > 0).astype(np.float64)
    return weight, pos_a + disp


def lock_feet_skeleton(
    skeleton,
    rotations: np.ndarray,
    translations: np.ndarray,
    legs: dict[str, tuple[int, int, int, int]],
    flags: dict[str, tuple[np.ndarray, np.ndarray]],
    forward: np.ndarray,
    rest_heights: tuple[float, float] = (0.0, 0.0),
    blend_frames: int = 5,
    fps: float | None = None,
    soft: float = 0.0,
    spots: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    max_speed: float = MAX_PLANTED_SPEED,
    glide_frames: int = 0,
    ease_accel: float | None = None,
    max_reach: float | None = None,
) -> np.ndarray:
    """Local rotations of any skeleton with planted feet held in place.

    legs: side -> (hip, knee, ankle, toe or -1), hip/knee/ankle each the parent of the next.
    flags: side -> (ankle planted, toe planted) per frame. The ankle keeps its world orientation.
    rest_heights: lowest allowed heights of a planted ankle and toe (in the skeleton's up axis Z).
    fps: the motion's frame rate; given, feet flagged planted while in full stride are left alone
    (faster than `max_speed` leg lengths per second on average over the contact).
    soft: soft reach of the leg IK (`two_bone_ik`).
    spots: side -> (ankle, toe) world positions (T, 3) to plant on instead of the motion's own.
    glide_frames: where the heel lands or lifts while the toe is planted, the ankle moves from the
    toe's spot to the heel's (or back) over this many frames; 0: in one (mocap, whose two spots agree
    to a centimetre or two).
    ease_accel: with fps, the most acceleration (leg lengths per second squared) that letting a
    planted foot go, or planting it, adds to the ankle; None: every ease lasts `blend_frames`.
    max_reach: leg lengths; a contact over which the foot strays further than this from its mean
    place is left alone (None: no limit).
    """
    rot = rotations.copy()
    rest = skeleton.rest_local_rotations()
    parents = skeleton.parents
    for side, (h, k, a, t) in legs.items():
        fa, ft = flags[side]
        if parents[k] != h or parents[a] != k or not (fa.any() or ft.any()):
            continue
        orient, pos = skeleton.forward_kinematics(rot, translations)
        pos_t = pos[:, t] if t >= 0 else pos[:, a]
        if t < 0:
            ft = np.zeros_like(ft)
        leg = np.linalg.norm(translations[0, k]) + np.linalg.norm(translations[0, a])
        max_step = np.inf if fps is None else max_speed * leg / fps
        weight, target = _ankle_targets(fa, ft, pos[:, a], pos_t, rest_heights[0], rest_heights[1], blend_frames,
                                        max_step, None if spots is None else spots[side], glide_frames,
                                        ease_accel=None if ease_accel is None or fps is None else ease_accel * leg / fps**2,
                                        max_reach=np.inf if max_reach is None else max_reach * leg)
        moved = weight > 0
        if not moved.any():
            continue
        goal = pos[moved, a] + weight[moved, None] * (target[moved] - pos[moved, a])
        hip_w, knee_w = two_bone_ik(orient[moved], pos[moved], (h, k, a), goal,
                                    translations[moved, k], translations[moved, a], forward, soft)
        ph = orient[moved][:, parents[h]]
        rot[moved, h] = quat.mul(quat.conj(quat.mul(ph, np.broadcast_to(rest[h], ph.shape))), hip_w)
        rot[moved, k] = quat.mul(quat.conj(quat.mul(hip_w, np.broadcast_to(rest[k], hip_w.shape))), knee_w)
        rot[moved, a] = quat.mul(quat.conj(quat.mul(knee_w, np.broadcast_to(rest[a], knee_w.shape))),
                                 orient[moved][:, a])
    return rot


HANDOVER_GLIDE = 5
"""Most frames over which the canonical foot lock (`pin_planted_feet`) moves a planted foot from the
toe's spot to the heel's where one takes over from the other (fewer where the spots are closer: no
frame moves more than 2 cm). Generated feet slide while "planted", so the two spots can be far
apart: jumping between them in one frame popped the knee (up to 150 m/s^2 on a turning walk) and put
frame-rate energy into the legs. On 120 validation prompts (one seed, the same raw clips locked each
way): skate 0.126 -> 0.122, jitter 65.7 -> 61.5 m/s^3, Nyquist share 0.00053 -> 0.00045 (0.00043
unlocked). In-betweening (`benchmarks.inbetween --split val --limit 80`): L2P ratio 5 / 15 / 30
0.686 / 0.588 / 0.570 -> 0.681 / 0.591 / 0.579, blocking 0.533 -> 0.535. The rig-side relock keeps
0: on retargeted mocap the spots agree to a centimetre or two and a glide only lets the foot slide.
So does a restyle (`footholds`): its spots are the original action's, which its feet must keep (a
glide let a restyled validation walk's foot slide 6.6 cm over the original's contacts, against 4.2)."""
SOFT_REACH = 0.02
"""Soft IK of the canonical foot lock (`two_bone_ik`): the last 2 % of the leg's reach is eased in.
A planted ankle under a fully stretched leg stays up to 6 mm short of its spot, and the knees no
longer alternate at the frame rate where the lock holds a foot under a straight leg (model card)."""


PIN_MAX_REACH = 0.5
"""Leg lengths (40 cm on the canonical body). A contact over which the generated foot strays further
than this from its mean place is not pinned: the foot travels there, and pinning it to the mean held
it up to a metre from the motion's foot (a test-split backward walk in-betweened with keys every
second: 1.09 m), which the leg cannot reach and the ease back cannot hide (largest joint acceleration
0.125 m/frame^2 against 0.043 unlocked). Validation (120 prompts, 38 windows, the same raw samples):
FID 10.31 -> 10.32, skate 0.132 either way, blocking windows unchanged; 0.35 and 0.25 raised the skate
(0.136, 0.141)."""
EASE_ACCEL = 10.0
"""Most acceleration (leg lengths per second squared, 8 m/s^2 on the canonical body) that the canonical
foot lock adds where it lets a planted foot go or plants it (`lock_feet_skeleton`). Generated feet
slide while flagged planted, so a pinned foot can sit 30-60 cm from where the motion put it at the
end of a contact; easing that back in the fixed 5 frames, or across a 3-frame swing to the next
spot, popped the knee (test-split blocking windows keyed every second: largest joint acceleration
0.20 m/frame^2 on a sideways walk and 0.18 on a salsa take, against 0.04 and 0.09 unlocked). Chosen
on validation (120 prompts and 38 6-s windows keyed every second, the same raw samples locked each
way; model card "Foot lock"). An ease that also left the plant at the planted goal's own velocity
(a cubic) popped less still but moved the LAFAN gaps further from the truth, so it is not used."""


def contacts_from_motion(clip: MotionClip, thresholds: ContactThresholds = CONTACT_PIN) -> np.ndarray:
    """(T, 4) contact flags where a foot joint is planted by `thresholds` (see skeleton.ContactThresholds)."""
    height, speed = thresholds.height, thresholds.speed
    _, pos = clip.forward_kinematics()
    idx = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    rest = CANONICAL.rest_pose()[1][idx, 2]
    feet = pos[:, idx]
    vel = np.zeros(feet.shape[:2])
    if len(feet) > 1:
        vel[1:] = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) * clip.fps
        vel[0] = vel[1]
    return ((feet[..., 2] - rest < height) & (vel < speed)).astype(np.float64)


def pin_planted_feet(clip: MotionClip, contacts: np.ndarray, threshold: float = 0.5, blend_frames: int = 5,
                     footholds: MotionClip | None = None) -> MotionClip:
    """The canonical clip with planted feet held in place, after sampling (the rig-side foot lock, for
    other proportions, is `RestAlignment.replant_feet_on_rig`). contacts: (T, 4) left ankle, left toe,
    right ankle, right toe. footholds: a clip of the same frames whose planted feet's places these
    feet take (a restyle keeps the original's steps); by default each contact's own place."""
    contacts = np.asarray(contacts, dtype=np.float64)
    if contacts.shape != (clip.num_frames, 4):
        raise ValueError(f"contacts must have shape ({clip.num_frames}, 4); got {contacts.shape}")
    flags = {side: (_median3(contacts[:, cols[0]]) > threshold, _median3(contacts[:, cols[1]]) > threshold)
             for side, cols in _CONTACT_COLUMNS.items()}
    trans = np.tile(CANONICAL.offsets, (clip.num_frames, 1, 1))
    trans[:, 0] = clip.root_translation
    rest = CANONICAL.rest_pose()[1]
    spots = None
    if footholds is not None:
        if footholds.num_frames != clip.num_frames:
            raise ValueError(f"footholds must have {clip.num_frames} frames; got {footholds.num_frames}")
        _, fpos = footholds.forward_kinematics()
        spots = {side: (fpos[:, legs[2]], fpos[:, legs[3]]) for side, legs in _LEGS.items()}
    rot = lock_feet_skeleton(CANONICAL, clip.rotations, trans, _LEGS, flags, np.array([0.0, -1.0, 0.0]),
                             (rest[_LEGS["left"][2], 2], rest[_LEGS["left"][3], 2]), blend_frames, clip.fps,
                             soft=SOFT_REACH, spots=spots, max_speed=PIN_MAX_SPEED,
                             glide_frames=HANDOVER_GLIDE if footholds is None else 0, ease_accel=EASE_ACCEL,
                             max_reach=PIN_MAX_REACH if footholds is None else None)
    return MotionClip(rot, clip.root_translation, clip.fps)


def continuous_twist(rotations: np.ndarray) -> np.ndarray:
    """Local rotations (T, 22, 4) of a canonical clip in which no bone flips half a turn about its
    own axis from one frame to the next.

    The model sometimes alternates a spine bone between two twists 180 degrees apart, the next
    joint up undoing it. Joint positions do not change (a turn about the axis toward the bone's
    only child moves nothing), but the bone itself would spin, and interpolating between such
    frames (another scene frame rate) twists the torso. Each single-child bone keeps whichever of
    its two twists is nearer its previous frame's; the other bones' world orientations are kept.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    world, _ = CANONICAL.forward_kinematics(rotations)
    world = world.copy()
    single = np.array([j for j in range(len(JOINT_NAMES)) if len(CANONICAL.children(j)) == 1])
    offsets = CANONICAL.offsets[[CANONICAL.children(j)[0] for j in single]]
    offsets = offsets / np.linalg.norm(offsets, axis=-1, keepdims=True)
    # The other twist of a bone is w * (0, a): a half turn about its own axis a (in its own frame).
    # Right-multiplying both sides by the same unit quaternion keeps a dot product, so whether frame
    # t's choice differs from frame t-1's depends only on the raw orientations of the two frames:
    # frame t keeps its predecessor's choice when its raw twist is the nearer one, and the choices
    # are the running parity of those switches (no loop over frames).
    w = world[:, single]
    half = np.concatenate([np.zeros(offsets.shape[:-1] + (1,)), offsets], axis=-1)
    alt = quat.mul(w, np.broadcast_to(half, w.shape))
    switch = np.abs(np.sum(alt[1:] * w[:-1], -1)) > np.abs(np.sum(w[1:] * w[:-1], -1))
    parity = np.concatenate([np.zeros((1, len(single)), bool), np.cumsum(switch, axis=0) % 2 == 1])
    world[:, single] = np.where(parity[..., None], alt, w)
    local = world.copy()
    child = np.array([j for j, p in enumerate(CANONICAL.parents) if p >= 0])
    local[:, child] = quat.mul(quat.conj(world[:, np.asarray(CANONICAL.parents)[child]]), world[:, child])
    return quat.make_continuous(local)
