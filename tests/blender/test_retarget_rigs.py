"""A real walk retargeted onto every test rig: CC0 characters, Rigify's metarig, BVH-built armatures."""
import importlib

import numpy as np
import pytest

import bpy

from benchmarks.retarget_bench import GLB_RIGS, RIGS, load_rigs


@pytest.fixture(scope="module")
def rigs(ext):
    import addon_utils

    from scripts.blender_env import reset_scene
    from training import data

    if data.bandai_file() is None or not RIGS.is_dir():
        pytest.skip("../shared/data or ../shared/rigs is not on this machine")
    reset_scene()
    files = [data.bandai_file("dataset-2_walk_normal_001.bvh"), data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"]
    return load_rigs(bpy, addon_utils, reset_scene, files)


@pytest.fixture(scope="module")
def walk(ext):
    from training import data

    bvh = importlib.import_module(ext.__name__ + ".inference.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retarget")
    return retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(30)


def test_every_test_rig_is_loaded(rigs):
    labels = [label for label, _ in rigs]
    assert len(labels) == len(GLB_RIGS) + 3 and "rigify_metarig" in labels


def test_walk_lands_on_every_rig(ext, rigs, walk):
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retarget_quality")
    for label, obj in rigs:
        q = rq.measure(bridge.armature_alignment(obj), walk)
        # every rig here has all 22 roles except Bandai-Namco's skeleton, which has no middle spine joint
        assert q.coverage >= (21 / 22 if "dataset" in label else 1.0), label
        assert q.dir_err_mean_deg < 5 and q.dir_err_worst_bone_deg < 10, label
        assert q.round_trip_err < 1e-3, label
        assert q.foot_slide_cm < 1.0, (label, q.foot_slide_cm)


def test_keys_survive_rig_to_canonical_to_rig(ext, rigs, walk):
    """Keys written on a rig, read back to canonical and written again, are the same keys."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    scene = bpy.context.scene
    fps = bridge.scene_fps(scene)
    for label, obj in rigs[:2] + [r for r in rigs if r[0] == "rigify_metarig"]:
        a = bridge.write_clip(obj, walk.slice(0, 40), "first", 1, fps=fps, foot_lock=False)
        back = bridge.read_clip(obj, a, 1, 40, fps)
        b = bridge.write_clip(obj, back, "second", 1, fps=fps, foot_lock=False)
        ka = {(fc.data_path, fc.array_index): [k.co[1] for k in fc.keyframe_points] for fc in bridge.action_fcurves(a, obj)}
        kb = {(fc.data_path, fc.array_index): [k.co[1] for k in fc.keyframe_points] for fc in bridge.action_fcurves(b, obj)}
        assert ka.keys() == kb.keys(), label
        worst = max(np.abs(np.array(ka[k]) - np.array(kb[k])).max() for k in ka)
        assert worst < 1e-3, (label, worst)
