"""Armatures as `Skeleton`s: bone hierarchy and rest pose, up axis and facing, the bone map the
rig uses, and the `RestAlignment` that retargets onto it; the canonical armature.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..inference.body import quat
from ..inference.retargeting.retarget import BoneMap, RestAlignment, RetargetError, detect_map, facing_basis
from ..inference.body.skeleton import CANONICAL


CANONICAL_MAP = BoneMap("Marionette canonical", {n: n for n in CANONICAL.names}, "Z")


# -- armatures ---------------------------------------------------------------------------------

def armature_skeleton(obj: bpy.types.Object) -> tuple["Skeleton", list[str]]:
    """The armature's rest pose as a `Skeleton` (armature space, Z up), with bones parents-first."""
    from ..inference.body.skeleton import Skeleton

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
    return RestAlignment.build(skeleton, bone_map, facing_basis(skeleton, bone_map, basis))


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
