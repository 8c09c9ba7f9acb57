"""Rigs driven by controls (Rigify's generated rig): which controls play which bones, and placing
them, frame by frame, where the bones' motion carries them, on a copy of the rig; the pose Blender
evaluates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import bpy
import numpy as np
from mathutils import Matrix

from ..inference.body import quat
from ..inference.retargeting.retarget import RIG_MAP_DIR

from .actions import _ensure_fcurve, _key_rotation, _new_action, _set_keys, assign_action_slot


# -- control rigs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlLayer:
    """How to animate a rig whose mapped bones are driven by constraints (Rigify's generated rig):
    the map names the driven bones (Rigify's ORG bones); the motion is keyed on the controls."""

    name: str
    controls: tuple[tuple[str, str, bool], ...]
    """(control bone, driven bone it follows, whether its location is keyed)"""
    properties: dict
    """pose bone -> {custom property: value} keyed with the motion (Rigify's IK/FK switches -> FK)"""
    deform: tuple[str, ...]
    """bones keyed with their evaluated pose when the animator asks for keys on the deform bones"""


@lru_cache(maxsize=None)
def _control_layers() -> tuple[ControlLayer, ...]:
    out = []
    for path in sorted(RIG_MAP_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "controls" in data:
            out.append(ControlLayer(data["name"], tuple((c, r, bool(loc)) for c, r, loc in data["controls"]),
                                    data.get("properties", {}), tuple(data.get("deform", ()))))
    return tuple(out)


def control_layer(obj) -> ControlLayer | None:
    """The control layer of this armature, if it is a control rig Marionette knows (recognised by
    its driven bones, e.g. Rigify's ORG bones; `missing_controls` says whether it can be keyed)."""
    if obj is None or obj.type != "ARMATURE":
        return None
    bones = obj.data.bones
    for layer in _control_layers():
        if all(r in bones for _, r, _ in layer.controls):
            return layer
    return None


def missing_controls(obj, layer: ControlLayer) -> list[str]:
    bones = obj.data.bones
    return [c for c, _, _ in layer.controls if c not in bones] + [b for b in layer.properties if b not in bones]


RIG_TARGETS = ("CONTROLS", "DEFORM")


def _matrix_basis_to_arrays(m) -> tuple[np.ndarray, np.ndarray]:
    loc, rot, _ = m.decompose()
    return np.array([rot.w, rot.x, rot.y, rot.z]), np.array(loc)


def _plain_anchor(obj, name: str, controls: set[str], driven: set[str]) -> str | None:
    """The control this one hangs from through bones with no constraints, drivers or unusual
    rotation inheritance (Rigify: forearm_fk under upper_arm_fk), else None. Its pose then follows from the
    anchor's by plain parenting, without asking Blender to evaluate the rig in between.
    `driven`: names of bones with drivers."""
    pose = obj.pose.bones

    def plain(bone):
        # scale inheritance does not matter: every pose placed here has unit scale
        return (not pose[bone.name].constraints and bone.name not in driven and bone.use_inherit_rotation
                and bone.use_local_location)

    b = obj.data.bones[name]
    if not plain(b):
        return None
    p = b.parent
    while p is not None:
        if p.name in controls:
            return p.name
        if not plain(p):
            return None
        p = p.parent
    return None


def _control_levels(obj, names: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Controls grouped so that each group only depends (through parents and constraint targets on
    this armature) on controls of earlier groups: one depsgraph update per group and frame. Controls
    with a plain anchor (see `_plain_anchor`) join their anchor's group and are returned as
    {control: anchor}."""
    pose = obj.pose.bones
    wanted = set(names)
    ad = obj.animation_data
    driven = {fc.data_path.split('"')[1] for fc in ad.drivers if fc.data_path.startswith("pose.bones")} if ad else set()
    anchors = {n: a for n in names if (a := _plain_anchor(obj, n, wanted, driven)) is not None}

    def direct(name):
        pb = pose[name]
        out = [pb.parent.name] if pb.parent else []
        for c in pb.constraints:
            if getattr(c, "target", None) == obj and getattr(c, "subtarget", ""):
                out.append(c.subtarget)
        return out

    level: dict[str, int] = {}

    def control_deps(name):
        found, stack, seen = set(), direct(name), set()
        while stack:
            b = stack.pop()
            if b in seen or b not in pose:
                continue
            seen.add(b)
            if b in wanted and b != name:
                found.add(b)
            else:
                stack.extend(direct(b))
        return found

    deps = {n: control_deps(n) for n in names}

    def depth(n, visiting=()):
        if n not in level:
            if n in visiting:
                return 0
            if n in anchors:
                level[n] = depth(anchors[n], visiting + (n,))
            else:
                level[n] = 1 + max((depth(d, visiting + (n,)) for d in deps[n]), default=-1)
        return level[n]

    for n in names:
        depth(n)
    groups: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for n in names:
        groups[level[n]].append(n)
    # within a group, anchors before the controls that hang from them
    for g in groups:
        g.sort(key=lambda n: _anchor_depth(n, anchors))
    return [g for g in groups if g], anchors


def _anchor_depth(n: str, anchors: dict[str, str]) -> int:
    d = 0
    while n in anchors:
        n, d = anchors[n], d + 1
    return d


def _pose_matrices(skeleton, rotations, translations, index: list[int]) -> np.ndarray:
    """(T, len(index), 4, 4) armature-space pose matrices of some skeleton joints (Blender bones)."""
    ws, ps = skeleton.forward_kinematics(rotations, translations)
    T = ws.shape[0]
    out = np.zeros((T, len(index), 4, 4))
    out[..., :3, :3] = quat.to_matrix(ws[:, index])
    out[..., :3, 3] = ps[:, index]
    out[..., 3, 3] = 1.0
    return out


def _write_controls(obj, layer: ControlLayer, align, rotations, translations, name, frame_start,
                    object_location, deform: bool):
    """Key the control layer so the driven bones take the retargeted pose: for every frame each
    control is placed (pose-space matrix) where its driven bone's motion carries it, group by group."""
    names = list(align.skeleton.names)
    controls = [c for c, _, _ in layer.controls]
    refs = [names.index(r) for _, r, _ in layer.controls]
    rest = {b.name: np.array(b.matrix_local) for b in obj.data.bones}
    pose_ref = _pose_matrices(align.skeleton, rotations, translations, refs)
    attach = np.stack([np.linalg.inv(rest[r]) @ rest[c] for c, r, _ in layer.controls])
    targets = pose_ref @ attach  # (T, C, 4, 4)
    T = targets.shape[0]
    groups, anchors = _control_levels(obj, controls)
    col = {c: i for i, c in enumerate(controls)}
    # a control hanging plainly from another one: basis = (anchor pose . anchor rest^-1 . rest)^-1 . pose
    plain_basis = {c: np.linalg.inv(targets[:, col[a]] @ (np.linalg.inv(rest[a]) @ rest[c])) @ targets[:, col[c]]
                   for c, a in anchors.items()}
    pose = obj.pose.bones
    baked = [b for b in layer.deform if b in pose] if deform else []

    rot_keys = {c: np.empty((T, 4)) for c in controls + baked}
    loc_keys = {c: np.empty((T, 3)) for c in controls + baked}
    # Work on a copy of the rig object (constraints and drivers follow it to the copy): the animator's
    # pose and properties stay untouched, and meshes bound to the rig are not re-evaluated every step.
    work = obj.copy()
    bpy.context.scene.collection.objects.link(work)
    try:
        if work.animation_data is not None:
            work.animation_data.action = None
        wpose = work.pose.bones
        for b, props in layer.properties.items():
            for k, v in props.items():
                wpose[b][k] = v
        identity = Matrix.Identity(4)
        for pb in wpose:
            pb.matrix_basis = identity
        view_layer = bpy.context.view_layer
        view_layer.update()
        for t in range(T):
            for group in groups:
                for c in group:
                    if c in plain_basis:
                        wpose[c].matrix_basis = Matrix(plain_basis[c][t].tolist())
                    else:
                        wpose[c].matrix = Matrix(targets[t, col[c]].tolist())
                view_layer.update()
            for c in controls:
                rot_keys[c][t], loc_keys[c][t] = _matrix_basis_to_arrays(wpose[c].matrix_basis)
            for b in baked:
                pb = wpose[b]
                m = work.convert_space(pose_bone=pb, matrix=pb.matrix, from_space="POSE", to_space="LOCAL")
                rot_keys[b][t], loc_keys[b][t] = _matrix_basis_to_arrays(m)
    finally:
        bpy.data.objects.remove(work)
    action = _new_action(obj, name)
    frames = frame_start + np.arange(T, dtype=np.float64)
    # location keys where the map asks, and where a free control had to move to follow its bone
    # (Rigify's upper FK spine hangs from the hips control)
    size = float(np.ptp(np.stack([r[:3, 3] for r in rest.values()]), axis=0).max())
    moved = {c for c, _, loc in layer.controls if loc} | set(baked)
    moved |= {c for c in controls if not all(pose[c].lock_location) and np.abs(loc_keys[c]).max() > 1e-4 * size}
    for c in controls + baked:
        pb = pose[c]
        _key_rotation(action, obj, pb, frames, rot_keys[c])
        if c in moved:
            path = pb.path_from_id("location")
            for i in range(3):
                _set_keys(_ensure_fcurve(action, obj, path, i, c), frames, loc_keys[c][:, i])
    for b, props in layer.properties.items():
        for k, v in props.items():
            _set_keys(_ensure_fcurve(action, obj, f'pose.bones["{b}"]["{k}"]', 0, b), frames, np.full(T, float(v)))
    if object_location is not None:
        for i in range(3):
            _set_keys(_ensure_fcurve(action, obj, "location", i, "Object Transforms"), frames, object_location[:, i])
    return action


def evaluated_pose(obj, action, bones: list[str], frame_start: int, num_frames: int, frames=None):
    """Armature-space orientations (T, n, 4) and head positions (T, n, 3) of some bones as Blender
    evaluates them (constraints, drivers, IK included) while `action` plays.
    frames: the (possibly fractional) frames to evaluate instead of frame_start .. + num_frames."""
    frames = frame_start + np.arange(num_frames, dtype=np.float64) if frames is None else np.asarray(frames, float)
    num_frames = len(frames)
    scene = bpy.context.scene
    ad = obj.animation_data or obj.animation_data_create()
    previous = (ad.action, getattr(ad, "action_slot", None))
    frame = scene.frame_current
    ws = np.empty((num_frames, len(bones), 4))
    ps = np.empty((num_frames, len(bones), 3))
    try:
        if action is not None:
            ad.action = action
            assign_action_slot(obj, action)
        for t in range(num_frames):
            whole = int(np.floor(frames[t]))
            scene.frame_set(whole, subframe=float(frames[t] - whole))
            for i, b in enumerate(bones):
                m = np.array(obj.pose.bones[b].matrix)
                r = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
                ws[t, i] = quat.from_matrix(r)
                ps[t, i] = m[:3, 3]
    finally:
        ad.action = previous[0]
        if previous[1] is not None and hasattr(ad, "action_slot"):
            ad.action_slot = previous[1]
        scene.frame_set(frame)
    return quat.make_continuous(ws), ps
