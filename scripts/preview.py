"""Headless previews of an animated armature: bone-parented meshes (armatures themselves do not
render; skinned characters bring their own), a following camera, Workbench stills tiled into a
contact sheet, and an mp4. Any bone length and units."""
from __future__ import annotations

import os

import bpy
import numpy as np

COLORS = {"L": (0.25, 0.45, 0.95, 1.0), "R": (0.9, 0.3, 0.25, 1.0), "C": (0.8, 0.8, 0.8, 1.0)}


def _side(name: str) -> str:
    n = name.lower()
    if n.endswith((".l", "_l", "-l")) or n.startswith(("left", "l_")) or ".l." in n or "left" in n:
        return "L"
    if n.endswith((".r", "_r", "-r")) or n.startswith(("right", "r_")) or ".r." in n or "right" in n:
        return "R"
    return "C"


def _prism(name: str, length: float, radius: float) -> bpy.types.Mesh:
    """A tapered six-sided prism along +Y from 0 to `length` (a bone's own axis)."""
    ring = [(np.cos(a), np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
    verts = [(radius * c, 0.0, radius * s) for c, s in ring] + [(0.6 * radius * c, length, 0.6 * radius * s) for c, s in ring]
    faces = [(i, (i + 1) % 6, 6 + (i + 1) % 6, 6 + i) for i in range(6)] + [tuple(range(5, -1, -1)), tuple(range(6, 12))]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    return mesh


def character_height(arm: bpy.types.Object) -> float:
    """The armature's standing height in world units (bone heads and tails at rest, object transform
    included), whatever units its bones are in (glTF and FBX rigs reach thousands)."""
    m = arm.matrix_world
    pts = np.array([tuple(m @ p) for b in arm.data.bones for p in (b.head_local, b.tail_local)])
    return float(np.ptp(pts[:, 2])) or 1.0


def add_bone_meshes(arm: bpy.types.Object, bone_names) -> list[bpy.types.Object]:
    """One prism per bone, parented to the bone so it follows the animation; sized in the bones' own
    units (prisms are built in bone space, so the object's scale applies to them as to the bones)."""
    scale = max(arm.matrix_world.to_scale()) or 1.0
    height = character_height(arm) / scale  # armature units
    out = []
    for name in bone_names:
        bone = arm.data.bones[name]
        radius = float(np.clip(0.18 * bone.length, 0.007 * height, 0.03 * height))
        obj = bpy.data.objects.new(f"preview_{name}", _prism(f"preview_{name}", bone.length, radius))
        arm.users_collection[0].objects.link(obj)
        obj.parent = arm
        obj.parent_type = "BONE"
        obj.parent_bone = name
        # A bone child sits at the bone's tail; move it back to the head.
        obj.location = (0.0, -bone.length, 0.0)
        obj.color = COLORS[_side(name)]
        out.append(obj)
    return out


def setup_stage(scene, arm: bpy.types.Object, follow_bone: str, resolution=(480, 360), side_offset: float = 0.0):
    """Ground, light-free Workbench shading and a camera that follows `follow_bone` over the ground.
    Sizes and distances come from the character's height in world units. side_offset: how far (world
    X) to the right of the followed bone the camera aims (a second character standing beside)."""
    height = character_height(arm)
    bpy.ops.mesh.primitive_plane_add(size=25.0 * max(height, 1.0))
    ground = bpy.context.view_layer.objects.active
    ground.color = (0.35, 0.37, 0.4, 1.0)
    target = bpy.data.objects.new("preview_target", None)
    scene.collection.objects.link(target)
    con = target.constraints.new("COPY_LOCATION")
    con.target = arm
    con.subtarget = follow_bone
    con.use_z = False
    con.use_offset = True
    target.location = (side_offset, 0.0, 0.5 * height)  # Z kept: the constraint leaves it alone
    cam = bpy.data.objects.new("preview_camera", bpy.data.cameras.new("preview_camera"))
    scene.collection.objects.link(cam)
    cam.parent = target
    wide = 1.0 + abs(side_offset) / height
    cam.location = (1.5 * height * wide, -2.1 * height * wide, 0.3 * height)
    cam.data.clip_start = 0.01 * height
    cam.data.clip_end = 100.0 * height * wide
    track = cam.constraints.new("TRACK_TO")
    track.target = target
    track.track_axis = "TRACK_NEGATIVE_Z"
    track.up_axis = "UP_Y"
    cam.data.lens = 40
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "OBJECT"
    shading.show_shadows = True
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    return cam


def _read_png(path: str) -> np.ndarray:
    img = bpy.data.images.load(path, check_existing=False)
    w, h = img.size
    px = np.empty(w * h * 4, dtype=np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    return px.reshape(h, w, 4)


def contact_sheet(scene, frames: list[int], path: str, columns: int = 4) -> None:
    """Render `frames` and tile them (left to right, top to bottom) into one PNG."""
    tmp = os.path.join(os.path.dirname(path), "frames")
    os.makedirs(tmp, exist_ok=True)
    scene.render.image_settings.file_format = "PNG"
    tiles = []
    for f in frames:
        scene.frame_set(f)
        scene.render.filepath = os.path.join(tmp, f"frame_{f:04d}.png")
        bpy.ops.render.render(write_still=True)
        tiles.append(_read_png(scene.render.filepath))
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.ones((rows * h, columns * w, 4), dtype=np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        # Image rows are stored bottom-up: the first tile goes at the top.
        y0 = (rows - 1 - r) * h
        sheet[y0 : y0 + h, c * w : (c + 1) * w] = t
    img = bpy.data.images.new("contact_sheet", columns * w, rows * h, alpha=True)
    img.pixels.foreach_set(sheet.ravel())
    img.filepath_raw = path
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)


def movie(scene, path: str, frame_start: int, frame_end: int) -> None:
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0+
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"
    scene.frame_start, scene.frame_end = frame_start, frame_end
    scene.render.filepath = path
    bpy.ops.render.render(animation=True)
    if hasattr(settings, "media_type"):
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
