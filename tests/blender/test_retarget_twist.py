"""What a viewer sees on a skinned character, beyond bone directions: knees that point forward, soles
that face the floor, palms and chest turned as in the source (each bone's secondary axis), measured
on the pose Blender evaluates from the keys. Real motion: a Bandai-Namco and a CMU walk."""
import importlib

import numpy as np
import pytest

import bpy

from benchmarks.retarget_bench import RIGS, measure_twist, mixamo_copy


@pytest.fixture(scope="module")
def characters(ext):
    """The skinned CC0 characters and a Mixamo-named copy of one."""
    import addon_utils

    from scripts.blender_env import reset_scene

    if not RIGS.is_dir():
        pytest.skip("../shared/rigs is not on this machine")
    reset_scene()
    addon_utils.enable("io_scene_gltf2", default_set=True)
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    out = []
    for name in ("quaternius_human_male.glb", "quaternius_human_female.glb"):
        before = set(bpy.data.objects)
        bpy.ops.import_scene.gltf(filepath=str(RIGS / name))
        out.append((name, next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")))
    out.append(("mixamo-named", mixamo_copy(bpy, bridge, out[0][1])))
    return out


@pytest.fixture(scope="module")
def walks(ext):
    from training import data

    if data.bandai_file() is None:
        pytest.skip("../shared/data is not on this machine")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    return {name: retarget.bvh_to_canonical(bvh.read_bvh(path)).resample(24).slice(0, 72)
            for name, path in (("bandai", data.bandai_file("dataset-2_walk_normal_001.bvh")),
                               ("cmu", data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"))}


def test_mixamo_named_copy_is_found_by_its_names(ext, characters):
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    assert bridge.armature_alignment(dict(characters)["mixamo-named"]).bone_map.name == "Mixamo"


def test_real_walk_keeps_knees_forward_and_soles_down(ext, characters, walks):
    """Not half a turn off: every secondary axis within a few degrees of the source's on average, no
    planted sole facing up, and each knee pointing the way the body faces."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget_quality")
    for label, obj in characters:
        for motion, clip in walks.items():
            q = measure_twist(bpy, bridge, rq, obj, clip)
            assert q is not None, label
            assert q.sole_flip_share == 0.0, (label, motion, q)
            assert q.twist_err_mean_deg < 5.0, (label, motion, q)
            assert max(q.by_axis_deg.values()) < 10.0, (label, motion, q)
            # the knees point forward on the character itself (not only like the source)
            align = bridge.armature_alignment(obj)
            action = bridge.write_clip(obj, clip, "knees", 1)
            names = [align.bone_map.joints[n] for n in ("pelvis", "left_hip", "right_hip", "left_knee",
                                                           "right_knee", "left_ankle", "right_ankle")]
            ws, ps = bridge.evaluated_pose(obj, action, names, 1, clip.num_frames)
            ps = np.einsum("ij,tkj->tki", np.array(obj.matrix_world.to_3x3()), ps)
            left = ps[:, 1] - ps[:, 2]
            forward = np.cross(left, [0.0, 0.0, 1.0])
            for hip, knee, ankle in ((1, 3, 5), (2, 4, 6)):
                thigh, shin = ps[:, knee] - ps[:, hip], ps[:, ankle] - ps[:, knee]
                bend = np.cross(thigh, shin)  # the knee's hinge: points to the character's side
                bent = np.linalg.norm(bend, axis=-1) > 0.15 * np.linalg.norm(thigh, axis=-1) * np.linalg.norm(shin, axis=-1)
                # knee pointing forward: the shin swings back, so thigh x shin points to the left of the body
                side = np.sum(np.cross(thigh, shin) * left, axis=-1)
                assert (side[bent] > 0).mean() > 0.95, (label, motion)
                assert bent.mean() > 0.3, (label, motion)
            assert np.all(np.linalg.norm(forward, axis=-1) > 0)
            obj.animation_data.action = None
            bpy.data.actions.remove(action)


def test_planted_heels_and_toes_touch_the_floor_whatever_the_source(ext, characters, walks):
    """The two Bandai-Namco sets disagree on the flat foot (the second set's foot bone points about
    3 degrees from the first's, and both bend the toe joint 17 degrees while the sole is flat): on the
    skinned characters the heel and toe vertices of planted feet stay within 1 cm of the floor, on
    average, for each. (The CMU walk is not held to this: its own planted ankles drift 3-5 cm in
    height from one step to the next.)"""
    from benchmarks.retarget_bench import ground_error_cm
    from training import data

    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    sources = {"bandai2": walks["bandai"],
               "bandai1": retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(24).slice(0, 72)}
    for label, obj in characters[:2]:
        for motion, clip in sources.items():
            err = ground_error_cm(bpy, bridge, obj, clip)
            assert err is not None and err < 1.0, (label, motion, err)
