"""Retargeting quality over every test rig (bpy module): prints JSON with the retarget_* bench keys.

    python -m benchmarks.retarget_bench

Rigs: the CC0 characters in ../shared/rigs (glTF, RobotExpressive included), Rigify's human metarig
and its generated rig, and armatures that Blender's BVH importer builds from a Bandai-Namco and a
CMU file. Source motion: a real walk (Bandai-Namco) on the canonical skeleton. Every figure comes
from the pose Blender evaluates from the keys the add-on writes.
"""
from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from training.data import shared_data_dir

REPO = Path(__file__).resolve().parent.parent
RIGS = shared_data_dir().parent / "rigs"
GLB_RIGS = ("quaternius_human_male.glb", "quaternius_human_female.glb", "kenney_human_zombie.glb", "m2m_rig_human.glb")


def load_rigs(bpy, addon_utils, reset_scene, bvh_files) -> list[tuple[str, object]]:
    """(label, armature object) for every test rig, each in the same scene."""
    out = []
    addon_utils.enable("io_scene_gltf2", default_set=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    for name in GLB_RIGS:
        path = RIGS / name
        if path.is_file():
            before = set(bpy.data.objects)
            bpy.ops.import_scene.gltf(filepath=str(path))
            arm = next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")
            out.append((name, arm))
    if out and out[-1][0] == "m2m_rig_human.glb":
        import importlib

        from scripts.blender_env import PACKAGE

        out.append(("m2m_rig_human.glb, A-pose rest", a_pose_copy(bpy, importlib.import_module(PACKAGE + ".bridge"), out[-1][1])))
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    out.append(("rigify_metarig", bpy.context.view_layer.objects.active))
    for path in bvh_files:
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=str(path))
        arm = next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")
        out.append((f"bvh:{Path(path).name}", arm))
    return out


def a_pose_copy(bpy, bridge, obj, degrees: float = 45.0):
    """A copy of a T-pose glTF rig re-rested in an A-pose: upper arms lowered by `degrees` about the
    character's forward axis, then Blender's Apply Pose as Rest Pose. (The shared A-pose mannequin
    is a mesh without an armature, so this is the A-pose rig the tests use.)"""
    import numpy as np
    from mathutils import Matrix, Quaternion, Vector

    copy = obj.copy()
    copy.data = obj.data.copy()
    copy.animation_data_clear()
    bpy.context.scene.collection.objects.link(copy)
    align = bridge.armature_alignment(copy)
    w, x, y, z = align.basis  # armature space -> Z-up canonical, where the character faces -Y
    forward = Quaternion((w, -x, -y, -z)) @ Vector((0.0, -1.0, 0.0))
    for side, sign in (("left", -1.0), ("right", 1.0)):
        pb = copy.pose.bones[align.bone_map.joints[f"{side}_shoulder"]]
        head = pb.bone.head_local
        turn = Matrix.Rotation(np.radians(sign * degrees), 4, forward)
        pb.matrix = Matrix.Translation(head) @ turn @ Matrix.Translation(-head) @ pb.bone.matrix_local
    view_layer = bpy.context.view_layer
    for o in view_layer.objects:
        o.select_set(False)
    view_layer.objects.active = copy
    copy.select_set(True)
    bpy.ops.object.mode_set(mode="POSE")
    bpy.ops.pose.armature_apply(selected=False)
    bpy.ops.object.mode_set(mode="OBJECT")
    return copy


def load_control_rigs(bpy, addon_utils) -> list[tuple[str, object]]:
    """Rigify's generated rig (from the human metarig) and the RobotExpressive glTF, whose feet are IK
    targets outside the leg chain inside a scaled, rotated armature object."""
    out = []
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.view_layer.objects.active
    meta.location.x = 3.0
    bpy.ops.pose.rigify_generate()
    out.append(("rigify_generated_rig", bpy.context.view_layer.objects.active))
    path = RIGS / "quaternius_robot_expressive.glb"
    if path.is_file():
        before = set(bpy.data.objects)
        bpy.ops.import_scene.gltf(filepath=str(path))
        out.append((path.name, next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")))
    return out


def mixamo_copy(bpy, bridge, obj):
    """A copy of a glTF rig with its bones renamed as Mixamo names them ("mixamorig:Hips", ...)."""
    from inference.retargeting.retarget import RIG_MAP_DIR

    mixamo = json.loads((RIG_MAP_DIR / "mixamo.json").read_text(encoding="utf-8"))["joints"]
    joints = bridge.armature_alignment(obj).bone_map.joints
    copy = obj.copy()
    copy.data = obj.data.copy()
    copy.animation_data_clear()
    bpy.context.scene.collection.objects.link(copy)
    renamed = {bone: mixamo[joint] for joint, bone in joints.items()}
    for bone in list(copy.data.bones):
        bone.name = "mixamorig:" + renamed.get(bone.name, bone.name)
    return copy


def measure_twist(bpy, bridge, rq, obj, clip):
    """`retarget_quality.TwistQuality` of `clip` keyed on the rig by the add-on, measured on the bone
    orientations Blender evaluates (None for rigs whose rest pose is no standing pose)."""
    import numpy as np

    align = bridge.armature_alignment(obj)
    names = list(align.skeleton.names)
    mapped = [int(m) for m in align.mapping if m >= 0]
    action = bridge.write_clip(obj, clip, "twist check", 1)
    ws = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (clip.num_frames, len(names), 1))
    ws[:, mapped], _ = bridge.evaluated_pose(obj, action, [names[m] for m in mapped], 1, clip.num_frames)
    obj.animation_data.action = None
    bpy.data.actions.remove(action)
    return rq.twist_quality(align, clip, ws)


def _mesh_vertices(bpy, meshes) -> np.ndarray:
    """World positions of the deformed vertices of `meshes`, concatenated, as Blender evaluates them now."""
    dg = bpy.context.evaluated_depsgraph_get()
    out = []
    for m in meshes:
        e = m.evaluated_get(dg)
        me = e.to_mesh()
        v = np.empty(3 * len(me.vertices))
        me.vertices.foreach_get("co", v)
        mw = np.array(e.matrix_world)
        out.append(v.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])
        e.to_mesh_clear()
    return np.concatenate(out)


SOLE_BAND_CM = 0.3
"""Heel and toe vertices are picked among those at most this far above their foot's lowest vertex
at rest (canonical cm)."""


def ground_error_cm(bpy, bridge, obj, clip) -> float | None:
    """On a skinned character: while the source's heel (ankle) or toe is planted, how far the mesh's
    heel or toe vertex (the rearmost and foremost of those that touch the floor at rest) is above or
    below the floor (the height of the lowest foot vertex at rest), mean
    absolute, in cm of a character scaled to the canonical leg length. None without a skinned mesh."""
    from scripts.blender_env import PACKAGE

    cleanup = importlib.import_module(PACKAGE + ".inference.retargeting.cleanup")
    skeleton = importlib.import_module(PACKAGE + ".inference.body.skeleton")
    quat = importlib.import_module(PACKAGE + ".inference.body.quat")
    meshes = [o for o in bpy.data.objects if o.type == "MESH"
              and any(md.type == "ARMATURE" and md.object == obj for md in o.modifiers)]
    if not meshes:
        return None
    align = bridge.armature_alignment(obj)
    joints = align.bone_map.joints
    scene = bpy.context.scene
    ad = obj.animation_data or obj.animation_data_create()
    previous = ad.action
    ad.action = None
    for pb in obj.pose.bones:
        pb.matrix_basis.identity()
    bpy.context.view_layer.update()
    rest = _mesh_vertices(bpy, meshes)
    m3 = np.array(obj.matrix_world.to_3x3())
    forward = m3 @ quat.rotate(quat.conj(align.basis), np.array([0.0, -1.0, 0.0]))
    forward[2] = 0.0
    forward /= np.linalg.norm(forward)
    # which vertices belong to which foot bone (vertex groups of the bound meshes, in concatenation order)
    weights = {}
    start = 0
    for m in meshes:
        n = len(m.data.vertices)
        for bone in (joints.get(f"{s}_{j}") for s in ("left", "right") for j in ("ankle", "foot")):
            g = m.vertex_groups.get(bone) if bone else None
            w = weights.setdefault(bone, np.zeros(len(rest)))
            if g is not None:
                for v in m.data.vertices:
                    for ge in v.groups:
                        if ge.group == g.index:
                            w[start + v.index] = ge.weight
        start += n
    feet = np.zeros(len(rest), bool)
    for w in weights.values():
        feet |= w > 0.5
    floor = rest[feet, 2].min()
    to_cm = 100.0 * align.scale / np.linalg.norm(m3[:, 0])  # world units -> canonical centimetres
    picks = {}
    for side in ("left", "right"):
        sole = np.zeros(len(rest), bool)
        for part in ("ankle", "foot"):
            w = weights.get(joints.get(f"{side}_{part}"))
            if w is not None:
                sole |= w > 0.5
        if not sole.any():
            continue
        # the vertices that touch the floor at rest: within SOLE_BAND_CM of this foot's lowest one
        # (a heel's or toe cap's rim curves up, so the furthest-back vertex of a wider band is not on the floor)
        sole &= rest[:, 2] < rest[sole, 2].min() + SOLE_BAND_CM / to_cm
        for part, sign in (("ankle", -1.0), ("foot", 1.0)):  # heel: furthest back; toe: furthest forward
            w = weights.get(joints.get(f"{side}_{part}"))
            if w is None:
                continue
            idx = np.flatnonzero((w > 0.5) & sole)
            if len(idx):
                picks[(side, part)] = idx[np.argmax(sign * rest[idx] @ forward)]
    action = bridge.write_clip(obj, clip, "ground check", 1)
    contacts = cleanup.contacts_from_motion(clip, skeleton.CONTACT_PLANTED)
    cols = {("left", "ankle"): 0, ("left", "foot"): 1, ("right", "ankle"): 2, ("right", "foot"): 3}
    errs = []
    for t in range(clip.num_frames):
        planted = [k for k, c in cols.items() if k in picks and contacts[t, c] > 0.5]
        if not planted:
            continue
        scene.frame_set(1 + t)
        v = _mesh_vertices(bpy, meshes)
        errs.extend(abs(v[picks[k], 2] - floor) * to_cm for k in planted)
    ad.action = previous
    bpy.data.actions.remove(action)
    return float(np.mean(errs)) if errs else None


def measure_on_rig(bpy, bridge, rq, obj, clip, round_trip_frames: int = 40):
    """Retarget `clip` onto the rig through the add-on's own writer, then measure the pose Blender
    evaluates from the keys (constraints and control rigs included): bone directions and planted feet.
    Round trip: keys written, read back to canonical and written again; the largest key change."""
    import numpy as np

    align = bridge.armature_alignment(obj)
    names = list(align.skeleton.names)
    mapped = [int(m) for m in align.mapping if m >= 0]
    # Rigify's generated rig: measure the deform bones (what moves the mesh) in place of the ORG bones
    measured = [f"DEF-{names[m][4:]}" if names[m].startswith("ORG-") and f"DEF-{names[m][4:]}" in obj.data.bones
                else names[m] for m in mapped]
    action = bridge.write_clip(obj, clip, "retarget check", 1)
    ps = np.zeros((clip.num_frames, len(names), 3))
    _, ps[:, mapped] = bridge.evaluated_pose(obj, action, measured, 1, clip.num_frames)
    part = clip.slice(0, round_trip_frames)
    a = bridge.write_clip(obj, part, "round trip 1", 1, foot_lock=False)
    back = bridge.read_clip(obj, a, 1, part.num_frames, part.fps)
    b = bridge.write_clip(obj, back, "round trip 2", 1, foot_lock=False)
    ka = {(fc.data_path, fc.array_index): np.array([k.co[1] for k in fc.keyframe_points]) for fc in bridge.action_fcurves(a, obj)}
    kb = {(fc.data_path, fc.array_index): np.array([k.co[1] for k in fc.keyframe_points]) for fc in bridge.action_fcurves(b, obj)}
    rt = max(np.abs(ka[k] - kb[k]).max() for k in ka) if ka.keys() == kb.keys() else float("inf")
    obj.animation_data.action = None
    for act in (action, a, b):
        bpy.data.actions.remove(act)
    return rq.measure_posed(align, clip, ps, float(rt))


def _mean(values):
    return float(np.mean(values)) if values else None


def generated_walk(ext):
    """A 4 s walk from the shipped model (seed 0), as the Generate button makes it."""
    gen = importlib.import_module(ext.__name__ + ".inference.generation.generate")
    return gen.Generator.shared(None, "cpu").generate("a person walks forward", seconds=4.0, seed=0).clip.resample(24)


def main() -> int:
    from scripts.blender_env import load_extension, reset_scene
    from training import data

    ext = load_extension()
    import addon_utils
    import bpy
    import numpy as np

    import importlib

    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget_quality")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    clip = retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(24)  # the scene's rate
    bvh_files = [data.bandai_file("dataset-2_walk_normal_001.bvh") or data.bandai_file(),
                 data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"]
    reset_scene()
    rows = {}
    rigs = load_rigs(bpy, addon_utils, reset_scene, bvh_files) + load_control_rigs(bpy, addon_utils)
    walks = [clip.slice(0, 96), retarget.bvh_to_canonical(bvh.read_bvh(bvh_files[1])).resample(24).slice(0, 96)]
    try:
        generated = generated_walk(ext)
    except Exception as e:  # noqa: BLE001 - the real-motion figures stand without the model
        print(f"retarget_bench: no generated walk ({e})", file=sys.stderr)
        generated = None
    twist, twist_gen, ground = {}, {}, {}
    for label, obj in rigs:
        rows[label] = measure_on_rig(bpy, bridge, rq, obj, clip).__dict__
        found = [q for q in (measure_twist(bpy, bridge, rq, obj, w) for w in walks) if q is not None]
        if found:
            twist[label] = found
            if generated is not None:
                twist_gen[label] = measure_twist(bpy, bridge, rq, obj, generated)
        if label in GLB_RIGS:
            ground[label] = ground_error_cm(bpy, bridge, obj, walks[0])
    # Keying a 4-second clip on Rigify's generated rig goes through Blender's evaluation frame by frame
    rig = dict(rigs)["rigify_generated_rig"]
    four_s = clip.slice(0, int(4 * clip.fps))
    t0 = time.perf_counter()
    bridge.write_clip(rig, four_s, "timing", 1)
    control_rig_s = time.perf_counter() - t0
    vals = list(rows.values())
    print(json.dumps({
        "retarget_rigs": len(rows),
        "retarget_map_coverage": float(np.mean([v["coverage"] for v in vals])),
        "retarget_dir_err_deg_mean": float(np.mean([v["dir_err_mean_deg"] for v in vals])),
        "retarget_dir_err_deg_max": float(np.max([v["dir_err_worst_bone_deg"] for v in vals])),
        "retarget_foot_slide_cm": float(np.mean([v["foot_slide_cm"] for v in vals])),
        "retarget_source_foot_slide_cm": float(np.mean([v["source_foot_slide_cm"] for v in vals])),
        "retarget_round_trip_err": float(np.max([v["round_trip_err"] for v in vals])),
        "retarget_control_rig_write_s": control_rig_s,
        "retarget_twist_err_deg_mean": float(np.mean([q.twist_err_mean_deg for v in twist.values() for q in v])),
        "retarget_twist_err_deg_max": float(np.max([q.twist_err_max_deg for v in twist.values() for q in v])),
        "retarget_sole_flip_share": float(np.mean([q.sole_flip_share for v in twist.values() for q in v])),
        "retarget_ground_err_cm": float(np.mean([g for g in ground.values() if g is not None])),
        "retarget_generated_twist_err_deg_mean": _mean([q.twist_err_mean_deg for q in twist_gen.values()]),
        "retarget_generated_twist_err_deg_max": max([q.twist_err_max_deg for q in twist_gen.values()], default=None),
        "retarget_generated_sole_flip_share": _mean([q.sole_flip_share for q in twist_gen.values()]),
        "retarget_twist_by_rig": {k: [q.__dict__ for q in v] for k, v in twist.items()},
        "retarget_ground_by_rig": ground,
        "retarget_by_rig": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
