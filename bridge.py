"""The one place that converts between Blender data and numpy: armatures to `Skeleton`s, and
canonical clips to and from keyframed Actions (legacy actions in 4.2-4.3, slotted from 4.4 on).

Everything here runs on the main thread.
"""
from __future__ import annotations

import bpy
import numpy as np

from .inference import quat
from .inference.motion import MotionClip, MotionError
from .inference.retarget import BoneMap, RestAlignment, RetargetError, detect_map
from .inference.skeleton import CANONICAL

CANONICAL_MAP = BoneMap("Marionette canonical", {n: n for n in CANONICAL.names}, "Z")


# -- armatures ---------------------------------------------------------------------------------

def armature_skeleton(obj: bpy.types.Object) -> tuple["Skeleton", list[str]]:
    """The armature's rest pose as a `Skeleton` (armature space, Z up), with bones parents-first."""
    from .inference.skeleton import Skeleton

    if obj is None or obj.type != "ARMATURE":
        raise RetargetError("Select an armature: the active object is not one.")
    bones = list(obj.data.bones)
    if not bones:
        raise RetargetError(f"Armature '{obj.name}' has no bones.")
    order: list = []
    pending = [b for b in bones if b.parent is None]
    while pending:
        b = pending.pop(0)
        order.append(b)
        pending[0:0] = list(b.children)
    names = [b.name for b in order]
    index = {n: i for i, n in enumerate(names)}
    # Several top-level bones (Rigify's generated rig, game rigs): a virtual root keeps one hierarchy.
    virtual = sum(1 for b in order if b.parent is None) > 1
    all_names = (["__armature__"] if virtual else []) + names
    parents, offsets, rests = [], [], []
    if virtual:
        parents.append(-1)
        offsets.append(np.zeros(3))
        rests.append(quat.IDENTITY)
    shift = 1 if virtual else 0
    for b in order:
        r_b = np.array(b.matrix_local.to_3x3())
        head = np.array(b.head_local)
        if b.parent is None:
            parents.append(0 if virtual else -1)
            offsets.append(head)
            rests.append(quat.from_matrix(r_b))
        else:
            r_p = np.array(b.parent.matrix_local.to_3x3())
            parents.append(index[b.parent.name] + shift)
            offsets.append(r_p.T @ (head - np.array(b.parent.head_local)))
            rests.append(quat.from_matrix(r_p.T @ r_b))
    return Skeleton(tuple(all_names), tuple(parents), np.array(offsets), np.array(rests)), all_names


def armature_basis(obj: bpy.types.Object) -> np.ndarray:
    """Rotation that stands the armature's own space up (Z up), without turning it about Z.

    Imported FBX/glTF rigs often keep Y-up bones inside an object rotated 90 degrees; a character
    that is merely turned in the scene keeps walking the way it faces.
    """
    q = obj.matrix_world.to_quaternion()
    world = quat.normalize(np.array([q.w, q.x, q.y, q.z]))
    up = quat.rotate(quat.conj(world), np.array([0.0, 0.0, 1.0]))
    return quat.between(up, np.array([0.0, 0.0, 1.0]))


def stored_bone_map(obj: bpy.types.Object) -> BoneMap | None:
    """The bone map kept on the armature (detected, then possibly fixed by hand), if it has one."""
    rows = getattr(obj, "marionette_bone_map", None)
    joints = {r.joint: r.bone for r in rows or () if r.bone}
    if not joints:
        return None
    return BoneMap(getattr(obj, "marionette_bone_map_source", "") or "Custom", joints, "Z")


def armature_alignment(obj: bpy.types.Object, bone_map: BoneMap | None = None, stored: bool = True) -> RestAlignment:
    """How the canonical skeleton sits on this armature: the given map, else the one stored on the
    armature (`stored`), else one detected from bone names or, failing that, the skeleton's shape."""
    skeleton, names = armature_skeleton(obj)
    basis = armature_basis(obj)
    if bone_map is None and stored:
        bone_map = stored_bone_map(obj)
    if bone_map is None:
        if set(CANONICAL.names) <= set(names):
            bone_map = CANONICAL_MAP
        else:
            up = quat.rotate(quat.conj(basis), np.array([0.0, 0.0, 1.0]))
            bone_map = detect_map(names, up="Z", skeleton=skeleton, up_vector=up)
    for n in bone_map.joints.values():
        if n not in names:
            raise RetargetError(f"The bone map points at bone '{n}', which armature '{obj.name}' does not have.")
    return RestAlignment.build(skeleton, bone_map, basis)


# -- actions -----------------------------------------------------------------------------------

def _ensure_fcurve(action, obj, data_path: str, index: int, group: str):
    if hasattr(action, "fcurve_ensure_for_datablock"):  # Blender 4.4+: slotted actions
        return action.fcurve_ensure_for_datablock(obj, data_path, index=index, group_name=group)
    fc = action.fcurves.find(data_path, index=index)
    return fc or action.fcurves.new(data_path, index=index, action_group=group)


def action_fcurves(action, obj=None) -> list:
    """All F-curves of an action for this object's slot (or the first slot), on any Blender version."""
    if getattr(action, "is_action_layered", False) and len(action.layers):
        slot = None
        if obj is not None and obj.animation_data and obj.animation_data.action == action:
            slot = obj.animation_data.action_slot
        if slot is None and len(action.slots):
            slot = action.slots[0]
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                bag = strip.channelbag(slot) if slot is not None else None
                if bag is not None:
                    out.extend(bag.fcurves)
        return out
    return list(getattr(action, "fcurves", []))


def _set_keys(fc, frames: np.ndarray, values: np.ndarray) -> None:
    kp = fc.keyframe_points
    kp.add(len(frames))
    co = np.empty(2 * len(frames), dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    kp.foreach_set("co", co)
    fc.update()


def write_action(
    obj: bpy.types.Object,
    name: str,
    rotations: np.ndarray,
    translations: np.ndarray,
    skeleton,
    bone_names: list[str],
    frame_start: int,
    keyed_bones: set[str],
    moved_bones: set[str],
    object_location: np.ndarray | None = None,
):
    """Create a new Action on `obj` from local rotations/translations of `skeleton`.

    Quaternion keys for `keyed_bones`, location keys for `moved_bones`. The object's previous
    action is kept in the file (fake user) and is not modified.
    """
    if obj.animation_data is None:
        obj.animation_data_create()
    previous = obj.animation_data.action
    if previous is not None:
        previous.use_fake_user = True
    action = bpy.data.actions.new(name)
    obj.animation_data.action = action
    T = rotations.shape[0]
    frames = frame_start + np.arange(T, dtype=np.float64)
    rest = skeleton.rest_local_rotations()
    for j, bname in enumerate(bone_names):
        if bname not in keyed_bones and bname not in moved_bones:
            continue
        pb = obj.pose.bones[bname]
        if bname in keyed_bones:
            pb.rotation_mode = "QUATERNION"
            q = quat.make_continuous(rotations[:, j])
            path = pb.path_from_id("rotation_quaternion")
            for i in range(4):
                _set_keys(_ensure_fcurve(action, obj, path, i, bname), frames, q[:, i])
        if bname in moved_bones:
            # translation = offset + rest_rotation * location (see Skeleton.forward_kinematics)
            loc = quat.rotate(np.broadcast_to(quat.conj(rest[j]), (T, 4)), translations[:, j] - skeleton.offsets[j])
            path = pb.path_from_id("location")
            for i in range(3):
                _set_keys(_ensure_fcurve(action, obj, path, i, bname), frames, loc[:, i])
    if object_location is not None:
        for i in range(3):
            _set_keys(_ensure_fcurve(action, obj, "location", i, "Object Transforms"), frames, object_location[:, i])
    return action


def assign_action_slot(obj, action) -> None:
    """After `obj.animation_data.action = action`: on Blender 4.4+ make sure a slot drives the object."""
    ad = obj.animation_data
    if ad is None or not hasattr(ad, "action_slot") or ad.action_slot is not None:
        return
    for slot in getattr(action, "slots", ()):
        if slot.target_id_type == "OBJECT":
            ad.action_slot = slot
            return


def read_action(obj, action, skeleton, bone_names: list[str], frame_start: int, num_frames: int):
    """Local rotations and translations of every bone, sampled at whole frames from an Action."""
    T = num_frames
    rest = skeleton.rest_local_rotations()
    rot = np.tile(quat.IDENTITY, (T, len(bone_names), 1))
    loc = np.zeros((T, len(bone_names), 3))
    index = {n: j for j, n in enumerate(bone_names)}
    frames = frame_start + np.arange(T, dtype=np.float64)
    for fc in action_fcurves(action, obj):
        path = fc.data_path
        if not path.startswith('pose.bones["'):
            continue
        bname = path[len('pose.bones["'):path.index('"]')].replace('\\"', '"')
        if bname not in index:
            continue
        values = np.array([fc.evaluate(f) for f in frames])
        if path.endswith("rotation_quaternion"):
            rot[:, index[bname], fc.array_index] = values
        elif path.endswith(".location"):
            loc[:, index[bname], fc.array_index] = values
    rot = quat.normalize(rot)
    trans = np.tile(skeleton.offsets, (T, 1, 1)) + quat.rotate(np.broadcast_to(rest, (T,) + rest.shape), loc)
    return rot, trans


# -- clips on armatures -------------------------------------------------------------------------

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


ROOT_MOTION = ("HIP", "OBJECT", "IN_PLACE")


def write_clip(
    obj: bpy.types.Object,
    clip: MotionClip,
    name: str,
    frame_start: int,
    fps: float | None = None,
    bone_map: BoneMap | None = None,
    scale_root: bool = True,
    root_motion: str = "HIP",
    foot_lock: bool = True,
):
    """Retarget a canonical clip onto an armature and key it as a new Action.

    foot_lock: pin the rig's ankles wherever the clip's feet are planted (different leg proportions
    would otherwise make them slide a little).

    root_motion: "HIP" keys the travel on the hip bone; "OBJECT" keys the travel over the ground
    on the armature object (the hips keep only height and sway); "IN_PLACE" drops the travel.
    """
    if root_motion not in ROOT_MOTION:
        raise MotionError(f"Root motion must be one of {', '.join(ROOT_MOTION)}; got {root_motion!r}.")
    align = armature_alignment(obj, bone_map)
    if fps is not None:
        clip = clip.resample(fps)
    travel = None
    if root_motion != "HIP":
        root = clip.root_translation.copy()
        travel = root[:, :2] - root[0, :2]
        root[:, :2] = root[0, :2]
        clip = MotionClip(clip.rotations, root, clip.fps)
    rotations, translations = align.from_canonical(clip, scale_root=scale_root)
    if foot_lock:
        rotations = align.lock_feet(rotations, translations, clip)
    skeleton = align.skeleton
    names = list(skeleton.names)
    keyed = {names[m] for m in align.mapping if m >= 0}
    pelvis = names[int(align.mapping[0])]
    object_path = None
    if root_motion == "OBJECT":
        # canonical metres -> armature units (leg-length scale) -> world, added to where the object stands
        k = align.scale if scale_root else 1.0
        d = np.zeros((clip.num_frames, 3))
        d[:, :2] = travel
        d = quat.rotate(np.broadcast_to(quat.conj(align.basis), (clip.num_frames, 4)), d) / k
        m3 = np.array(obj.matrix_world.to_3x3())
        object_path = np.array(obj.location) + d @ m3.T
    return write_action(obj, name, rotations, translations, skeleton, names, frame_start, keyed, {pelvis},
                        object_location=object_path)


def read_clip(
    obj: bpy.types.Object,
    action,
    frame_start: int,
    num_frames: int,
    fps: float,
    bone_map: BoneMap | None = None,
    scale_root: bool = True,
) -> MotionClip:
    """Read an Action on an armature back into a canonical clip."""
    if num_frames <= 0:
        raise MotionError("There are no frames to read.")
    align = armature_alignment(obj, bone_map)
    rot, trans = read_action(obj, action, align.skeleton, list(align.skeleton.names), frame_start, num_frames)
    return align.to_canonical(rot, trans, fps, scale_root=scale_root)


def create_canonical_armature(context, name: str = "Marionette") -> bpy.types.Object:
    """An armature with the canonical skeleton's bones (T-pose), at the 3D cursor."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    context.collection.objects.link(obj)
    obj.location = context.scene.cursor.location
    view_layer = context.view_layer
    for o in view_layer.objects:
        o.select_set(False)
    view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    _, pos = CANONICAL.rest_pose()
    ebones = {}
    for j, n in enumerate(CANONICAL.names):
        eb = arm.edit_bones.new(n)
        kids = CANONICAL.children(j)
        head = pos[j]
        if len(kids) == 1:
            tail = pos[kids[0]]
        elif n == "pelvis":
            tail = head + np.array([0.0, 0.0, 0.1])
        elif n == "spine3":
            tail = pos[CANONICAL.index("neck")]
        elif n == "head":
            tail = head + np.array([0.0, 0.0, 0.15])
        elif n.endswith("wrist"):
            tail = head + np.array([0.08 * np.sign(head[0]), 0.0, 0.0])
        elif n.endswith("foot"):
            tail = head + np.array([0.0, -0.06, 0.0])
        else:
            tail = head + np.array([0.0, 0.0, 0.1])
        eb.head = head.tolist()
        eb.tail = tail.tolist()
        eb.roll = 0.0
        p = CANONICAL.parents[j]
        if p >= 0:
            eb.parent = ebones[CANONICAL.names[p]]
        ebones[n] = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj
