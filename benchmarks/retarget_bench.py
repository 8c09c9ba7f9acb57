"""Retargeting quality over every test rig (bpy module): prints JSON with the retarget_* bench keys.

    python -m benchmarks.retarget_bench

Rigs: the CC0 characters in ../shared/rigs (glTF), Rigify's human metarig, and armatures that
Blender's BVH importer builds from a Bandai-Namco and a CMU file. Source motion: a held-out-style
real walk (Bandai-Namco dataset-1 walk) on the canonical skeleton, plus a CMU clip.
"""
from __future__ import annotations

import json
import sys
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
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    out.append(("rigify_metarig", bpy.context.view_layer.objects.active))
    for path in bvh_files:
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=str(path))
        arm = next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")
        out.append((f"bvh:{Path(path).name}", arm))
    return out


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
    clip = retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(30)
    bvh_files = [data.bandai_file("dataset-2_walk_normal_001.bvh") or data.bandai_file(),
                 data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"]
    reset_scene()
    rows = {}
    for label, obj in load_rigs(bpy, addon_utils, reset_scene, bvh_files):
        align = bridge.armature_alignment(obj)
        q = rq.measure(align, clip)
        rows[label] = q.__dict__
    vals = list(rows.values())
    print(json.dumps({
        "retarget_rigs": len(rows),
        "retarget_map_coverage": float(np.mean([v["coverage"] for v in vals])),
        "retarget_dir_err_deg_mean": float(np.mean([v["dir_err_mean_deg"] for v in vals])),
        "retarget_dir_err_deg_max": float(np.max([v["dir_err_worst_bone_deg"] for v in vals])),
        "retarget_foot_slide_cm": float(np.mean([v["foot_slide_cm"] for v in vals])),
        "retarget_source_foot_slide_cm": float(np.mean([v["source_foot_slide_cm"] for v in vals])),
        "retarget_round_trip_err": float(np.max([v["round_trip_err"] for v in vals])),
        "retarget_by_rig": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
