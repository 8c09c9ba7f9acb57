"""Rigs that are built differently from the ones the retargeting was first tried on: a hip bone
connected to a root bone (Blender's BVH importer), a centimetre-scale armature, a rig facing +Y at
rest, bones that rotate in Euler with earlier Euler-keyed actions. Checked on the pose Blender
evaluates, as the animator sees it."""
import importlib

import numpy as np
import pytest

import bpy


@pytest.fixture(scope="module")
def walk(ext):
    from training import data

    if data.bandai_file() is None:
        pytest.skip("../shared/data is not on this machine")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    return retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(30).slice(0, 90)


def _edit(obj, fn):
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    fn(obj.data.edit_bones)
    bpy.ops.object.mode_set(mode="OBJECT")


def _world_heads(obj, action, bones, frames):
    """(T, n, 3) world positions of bone heads while `action` plays."""
    bridge = importlib.import_module("bl_ext.marionette_dev.marionette.bridge")
    _, ps = bridge.evaluated_pose(obj, action, bones, 1, frames)
    m = np.array(obj.matrix_world)
    return ps @ m[:3, :3].T + m[:3, 3]


def test_connected_hips_travel_on_their_root_bone_on_a_centimetre_armature(ext, scene, walk):
    """The hips hang, connected, from a root bone on the floor, in centimetres: the walk travels (not
    in place), the feet stay on the floor, and the animator is told where the travel went."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active

    def build(eb):
        for b in eb:
            b.head, b.tail = b.head * 100.0, b.tail * 100.0
        root = eb.new("root")
        root.head, root.tail = (0.0, 0.0, 0.0), eb["pelvis"].head.copy()
        eb["pelvis"].parent = root
        eb["pelvis"].use_connect = True

    _edit(obj, build)
    assert obj.data.bones["pelvis"].use_connect
    action = bridge.write_clip(obj, walk, "walk", 1)
    assert "root" in action.get("marionette_note", "")
    ps = _world_heads(obj, action, ["pelvis", "left_ankle", "right_ankle"], walk.num_frames)
    travel = np.linalg.norm(ps[-1, 0, :2] - ps[0, 0, :2])
    src = walk.positions()[:, 0]
    assert travel > 0.8 * 100 * np.linalg.norm(src[-1, :2] - src[0, :2]) > 50.0
    lowest = ps[:, 1:, 2].min(axis=1)
    src_lowest = 100 * walk.positions()[:, [7, 8], 2].min(axis=1)
    assert abs(np.median(lowest) - np.median(src_lowest)) < 1.0, "ankles as high as the source's, not under the floor"


def test_rig_facing_plus_y_walks_the_way_it_faces(ext, scene, walk):
    """Its armature turned half round in edit mode: the character keeps facing +Y on the first frame
    and walks forward (+Y), instead of turning round."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active

    def turn(eb):
        from mathutils import Matrix

        r = Matrix.Rotation(np.pi, 4, "Z")
        for b in eb:
            b.transform(r)

    _edit(obj, turn)
    action = bridge.write_clip(obj, walk, "walk", 1)
    ps = _world_heads(obj, action, ["pelvis", "left_hip", "right_hip", "spine3"], walk.num_frames)
    left = ps[:, 1] - ps[:, 2]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    # the source walk starts facing -Y (canonical forward); the rig's forward is +Y
    src = walk.positions()
    src_forward = np.cross(src[0, 1] - src[0, 2], [0.0, 0.0, 1.0])
    assert src_forward[1] < 0 and forward[0, 1] > 0.9 * np.linalg.norm(forward[0])
    assert ps[-1, 0, 1] - ps[0, 0, 1] > 0.5, "walks forward, toward +Y"


def test_earlier_euler_action_plays_exactly_as_before(ext, scene, walk):
    """Blender's BVH importer keys Euler rotations on Euler bones. Keying a new motion on that rig
    must not change how the imported action plays (it did once the bones were switched to
    quaternions); the new action is keyed in Euler too and lands like on any rig."""
    import addon_utils

    from training import data

    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget_quality")
    addon_utils.enable("io_anim_bvh", default_set=True)
    before = set(bpy.data.objects)
    bpy.ops.import_anim.bvh(filepath=str(data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"))
    obj = next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")
    old = obj.animation_data.action
    assert {pb.rotation_mode for pb in obj.pose.bones} != {"QUATERNION"}
    names = [b.name for b in obj.data.bones]
    ws0, ps0 = bridge.evaluated_pose(obj, old, names, 1, 60)
    new = bridge.write_clip(obj, walk, "walk", 1)
    assert obj.animation_data.action == new
    ws1, ps1 = bridge.evaluated_pose(obj, old, names, 1, 60)
    assert np.abs(ps1 - ps0).max() < 1e-4 * np.ptp(ps0)
    assert np.abs(np.abs((ws1 * ws0).sum(-1)) - 1.0).max() < 1e-6
    paths = {fc.data_path.rsplit(".", 1)[-1] for fc in bridge.action_fcurves(new, obj)}
    assert "rotation_euler" in paths and "rotation_quaternion" not in paths
    align = bridge.armature_alignment(obj)
    mapped = [int(m) for m in align.mapping if m >= 0]
    ps = np.zeros((walk.num_frames, len(align.skeleton.names), 3))
    _, ps[:, mapped] = bridge.evaluated_pose(obj, new, [align.skeleton.names[m] for m in mapped], 1, walk.num_frames)
    q = rq.measure_posed(align, walk, ps, 0.0)
    assert q.dir_err_mean_deg < 5 and q.dir_err_worst_bone_deg < 10, q
    # and read back, Euler keys give the same clip
    plain = bridge.write_clip(obj, walk, "walk, feet free", 1, foot_lock=False, level_feet=False)
    back = bridge.read_clip(obj, plain, 1, walk.num_frames, walk.fps)
    assert np.abs(back.positions() - walk.positions()).max() < 1e-3
