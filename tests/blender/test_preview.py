"""The demo's preview (bone prisms, ground and camera) on armatures whose bones are in other units:
glTF and FBX characters come with bones up to thousands of units long under a small object scale."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")


def _character(units: float):
    """The canonical character, its bones `units` times longer and the object scaled back by as much:
    the same figure in the scene, in other armature units."""
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    arm = bpy.context.view_layer.objects.active
    if units != 1.0:
        bpy.ops.object.mode_set(mode="EDIT")
        for b in arm.data.edit_bones:
            b.head *= units
            b.tail *= units
        bpy.ops.object.mode_set(mode="OBJECT")
        arm.scale = (1.0 / units,) * 3
    bpy.context.view_layer.update()
    return arm


def _framing(scene, arm, cam):
    """Where the bone heads land in the camera's picture (x, y in 0..1), and the prisms' world widths."""
    from bpy_extras.object_utils import world_to_camera_view

    bpy.context.view_layer.update()
    m = arm.matrix_world
    pts = np.array([tuple(world_to_camera_view(scene, cam, m @ b.head_local))[:2] for b in arm.data.bones])
    widths = []
    for obj in (o for o in scene.objects if o.name.startswith("preview_") and o.type == "MESH"):
        # prisms run along the bone's Y: their thickness is across it, in scene units
        v = np.array([tuple(p.co) for p in obj.data.vertices])
        widths.append(np.ptp(v[:, 0]) * max(obj.matrix_world.to_scale()))
    return pts, np.array(widths)


@pytest.mark.parametrize("units", [1.0, 100.0, 2784.0])
def test_preview_frames_a_character_whatever_its_bone_units(ext, scene, units):
    from scripts import preview

    arm = _character(units)
    height = preview.character_height(arm)
    assert 1.0 < height < 2.5, "the same figure in the scene, whatever the armature units"
    preview.add_bone_meshes(arm, [b.name for b in arm.data.bones])
    cam = preview.setup_stage(scene, arm, arm.data.bones[0].name)
    pts, widths = _framing(scene, arm, cam)
    assert ((pts > 0.02) & (pts < 0.98)).all(), "the whole character is in the picture"
    assert np.ptp(pts[:, 1]) > 0.3, "and fills a good part of it"
    # prisms as thick, in the scene, as on the metre armature: neither needles nor boulders
    assert (widths < 0.1 * height).all() and (widths > 0.005 * height).all(), widths
