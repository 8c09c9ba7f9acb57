"""`make demo`: the add-on's main job, headless, on an embedded default.

Until the motion model ships, this imports a Bandai-Namco clip (when ../shared/data is present)
through the add-on's own Import Motion operator onto Rigify's human metarig, then saves
out/demo.blend and renders out/demo.png (contact sheet) and out/demo.mp4.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.blender_env import load_extension, reset_scene  # noqa: E402
from training.data import bandai_file  # noqa: E402


def fallback_clip(ext, seconds: float = 3.0, fps: float = 30.0):
    """A procedural wave, used only when the shared motion data is not on this machine."""
    import numpy as np

    quat = ext.inference.quat
    MotionClip = ext.inference.motion.MotionClip
    names = ext.inference.skeleton.JOINT_NAMES
    n = int(seconds * fps)
    clip = MotionClip.rest(n, fps)
    rot = clip.rotations.copy()
    t = np.arange(n) / fps
    raise_arm = quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), np.full(n, -1.2))
    wave = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), 0.5 * np.sin(2 * np.pi * 1.5 * t))
    rot[:, names.index("right_shoulder")] = quat.mul(raise_arm, np.ones((n, 1)) * quat.IDENTITY)
    rot[:, names.index("right_elbow")] = wave
    return MotionClip(rot, clip.root_translation, fps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(REPO / "out"))
    ap.add_argument("--clip", default=None, help="a BVH file to use instead of the default Bandai-Namco walk")
    ap.add_argument("--frames", type=int, default=8, help="stills on the contact sheet")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    ext = load_extension()
    import bpy
    import numpy as np

    from scripts import preview

    scene = reset_scene()
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    arm = bpy.context.view_layer.objects.active
    source = args.clip or bandai_file()
    if source:
        result = bpy.ops.marionette.import_motion(filepath=str(source))
        if result != {"FINISHED"}:
            print("demo: import failed", file=sys.stderr)
            return 1
        label = Path(source).name
    else:
        clip = fallback_clip(ext)
        ext.bridge.write_clip(arm, clip, "wave (procedural)", 1, fps=ext.bridge.scene_fps(scene))
        scene.frame_end = clip.num_frames
        label = "procedural wave (no ../shared/data on this machine)"
    action = arm.animation_data.action
    first, last = (int(round(v)) for v in action.frame_range)
    scene.frame_start, scene.frame_end = first, last

    align = ext.bridge.armature_alignment(arm)
    bones = [align.skeleton.names[m] for m in align.mapping if m >= 0]
    preview.add_bone_meshes(arm, bones)
    preview.setup_stage(scene, arm, follow_bone=bones[0])
    blend = os.path.join(args.out, "demo.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)

    frames = [int(round(f)) for f in np.linspace(first, last, args.frames)]
    sheet = os.path.join(args.out, "demo.png")
    preview.contact_sheet(scene, frames, sheet)
    mp4 = os.path.join(args.out, "demo.mp4")
    preview.movie(scene, mp4, first, last)
    print(
        f"demo: {label} -> '{arm.name}' action '{action.name}' ({last - first + 1} frames)\n"
        f"      wrote {blend}, {sheet}, {mp4} in {time.time() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
