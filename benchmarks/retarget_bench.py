"""Retargeting quality over every test rig (bpy module): prints JSON with the retarget_* bench keys.

    python -m benchmarks.retarget_bench

Rigs: the CC0 characters in ../shared/rigs (glTF, RobotExpressive included), Rigify's human metarig
and its generated rig, and armatures that Blender's BVH importer builds from a Bandai-Namco and a
CMU file. Source motion: a real walk (Bandai-Namco) on the canonical skeleton. Every figure comes
from the pose Blender evaluates from the keys the add-on writes.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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
    import json

    mixamo = json.loads((bridge.RIG_MAP_DIR / "mixamo.json").read_text(encoding="utf-8"))["joints"]
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


def main() -> int:
    from scripts.blender_env import load_extension, reset_scene
    from training import data

    ext = load_extension()
    import addon_utils
    import bpy
    import numpy as np

    import importlib

    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retarget_quality")
    bvh = importlib.import_module(ext.__name__ + ".inference.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retarget")
    clip = retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(24)  # the scene's rate
    bvh_files = [data.bandai_file("dataset-2_walk_normal_001.bvh") or data.bandai_file(),
                 data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"]
    reset_scene()
    rows = {}
    rigs = load_rigs(bpy, addon_utils, reset_scene, bvh_files) + load_control_rigs(bpy, addon_utils)
    for label, obj in rigs:
        rows[label] = measure_on_rig(bpy, bridge, rq, obj, clip).__dict__
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
        "retarget_by_rig": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
