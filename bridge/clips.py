"""Canonical clips onto armatures and back: where the root motion goes (hips, object, in place),
keeping feet planted on the rig, and reading a rig's action as a canonical clip.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..inference.body import quat
from ..inference.body.motion import MotionClip, MotionError
from ..inference.retargeting.retarget import ROOT_MOTION, BoneMap, RetargetError, split_root_motion

from .actions import read_action, write_action
from .armature import armature_alignment
from .control_rigs import RIG_TARGETS, _write_controls, control_layer, evaluated_pose, missing_controls


# -- clips on armatures -------------------------------------------------------------------------

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base




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
    rig_target: str | None = None,
    level_feet: bool = True,
):
    """Retarget a canonical clip onto an armature and key it as a new Action.

    rig_target: on a control rig (Rigify's generated rig), "CONTROLS" keys the FK controls (and
    switches the limbs to FK); "DEFORM" also keys the deform bones with their evaluated pose.
    Default: the armature's own setting (`marionette_rig_target`).

    foot_lock: pin the rig's ankles wherever the clip's feet are planted (different leg proportions
    would otherwise make them slide a little).

    level_feet: make the clip's flat foot the rig's flat sole (`RestAlignment.level_feet`) and, with
    foot_lock, fit its travel and hips to the rig's stride (`RestAlignment.fit_stride`): for motion
    from elsewhere (generated, imported); off for motion read from this rig, whose root path (and
    the animator's keys around it) stays exactly as it is.

    root_motion: "HIP" keys the travel on the hip bone; "OBJECT" keys the travel over the ground
    on the armature object (the hips keep only height and sway); "IN_PLACE" drops the travel.
    """
    align = armature_alignment(obj, bone_map)
    names = list(align.skeleton.names)
    if fps is not None:
        clip = clip.at_rate(fps)
    planted = None
    if level_feet:
        clip = align.level_feet(clip)
        if foot_lock:
            # the feet are planted where they were before the root moved to fit the rig's stride
            planted = split_root_motion(clip, root_motion)[0]
            clip = align.fit_stride(clip, scale_root=scale_root)
    clip, travel = split_root_motion(clip, root_motion)
    carrier, note = _root_carrier(obj, align)
    rotations, translations = align.from_canonical(clip, scale_root=scale_root,
                                                   carrier=None if carrier is None else names.index(carrier))
    if foot_lock:
        rotations, translations = align.replant_feet_on_rig(rotations, translations, clip, planted)
    skeleton = align.skeleton
    keyed = {names[m] for m in align.mapping if m >= 0}
    # Bones between mapped ones (CMU's LHipJoint, a second neck bone) are keyed at rest as well: the
    # retargeting assumes them there, and unkeyed they would keep a pose left by the previous action.
    for m in list(keyed):
        p = skeleton.parents[names.index(m)]
        while p >= 0 and names[p] not in keyed and names[p] in obj.pose.bones:
            keyed.add(names[p])
            p = skeleton.parents[p]
    moved = {names[b] for b in align.moved_bones()}
    if carrier is not None:
        # the carrier and the bones down to the pelvis: rest rotations, the carrier's location keyed
        moved = (moved - {names[int(align.mapping[0])]}) | {carrier}
        b = obj.data.bones[names[int(align.mapping[0])]]
        while b is not None and b.name != carrier:
            b = b.parent
            keyed.add(b.name)
    object_path = None
    if root_motion == "OBJECT":
        # armature units -> world, added to where the object stands
        m3 = np.array(obj.matrix_world.to_3x3())
        object_path = np.array(obj.location) + align.travel_in_rig(travel, scale_root) @ m3.T
    layer = control_layer(obj)
    if layer is not None:
        missing = missing_controls(obj, layer)
        if missing:
            raise RetargetError(f"'{obj.name}' looks like a {layer.name}, but it lacks the control bone(s) "
                                f"{', '.join(missing[:5])}: Marionette keys that rig on its controls. "
                                "Regenerate the rig, or animate its metarig.")
        target = rig_target or getattr(obj, "marionette_rig_target", "CONTROLS")
        if target not in RIG_TARGETS:
            raise MotionError(f"Rig target must be one of {', '.join(RIG_TARGETS)}; got {target!r}.")
        return _write_controls(obj, layer, align, rotations, translations, name, frame_start, object_path,
                               deform=target == "DEFORM")
    action = write_action(obj, name, rotations, translations, skeleton, names, frame_start, keyed, moved,
                          object_location=object_path)
    if note:
        action["marionette_note"] = note
    return action


def _root_carrier(obj, align) -> tuple[str | None, str]:
    """For a hip bone connected to its parent (Blender's BVH importer connects it under a root bone),
    which cannot take location keys: the nearest unconnected ancestor, which carries the travel, and a
    sentence telling the animator so. (None, "") for a hip bone that can move."""
    pelvis = obj.data.bones.get(align.skeleton.names[int(align.mapping[0])])
    if pelvis is None or not pelvis.use_connect or pelvis.parent is None:
        return None, ""
    carrier = pelvis.parent
    while carrier.use_connect and carrier.parent is not None:
        carrier = carrier.parent
    return carrier.name, (f"'{pelvis.name}' is connected to '{pelvis.parent.name}' and cannot move on its own: "
                          f"the motion's travel is keyed on '{carrier.name}'.")


def read_clip(
    obj: bpy.types.Object,
    action,
    frame_start: int,
    num_frames: int,
    fps: float,
    bone_map: BoneMap | None = None,
    scale_root: bool = True,
    frames=None,
) -> MotionClip:
    """Read an Action on an armature back into a canonical clip (at `frames`, possibly fractional,
    instead of frame_start .. + num_frames when given)."""
    if frames is not None:
        num_frames = len(frames)
    if num_frames <= 0:
        raise MotionError("There are no frames to read.")
    align = armature_alignment(obj, bone_map)
    if control_layer(obj) is not None:
        # the mapped bones follow controls through constraints: read them as Blender evaluates them
        names = list(align.skeleton.names)
        mapped = [int(m) for m in align.mapping if m >= 0]
        ws = np.tile(quat.IDENTITY, (num_frames, len(names), 1))
        ps = np.zeros((num_frames, len(names), 3))
        ws[:, mapped], ps[:, mapped] = evaluated_pose(obj, action, [names[m] for m in mapped], frame_start, num_frames,
                                                      frames)
        return align.posed_to_canonical(ws, ps, fps, scale_root=scale_root)
    rot, trans = read_action(obj, action, align.skeleton, list(align.skeleton.names), frame_start, num_frames, frames)
    return align.to_canonical(rot, trans, fps, scale_root=scale_root)
