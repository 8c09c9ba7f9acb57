"""`make demo`: the add-on's main job, headless, on an embedded default.

Generates motion from a text prompt with the shipped model, through the add-on's own Generate
operator, onto Rigify's human metarig, and keys the same motion on a skinned CC0 character from
../shared/rigs beside it (Workbench renders meshes, not armatures); saves out/demo.blend and renders
out/demo.png (contact sheet) and out/demo.mp4.

    make demo PROMPT="a person waves with the right hand" SECONDS=6 SEED=3
    make demo PROMPT="a person walks forward" STYLE=elderly          # a style preset at strength 1
    python scripts/demo.py --style elderly:0.5 --style tired         # styles mixed, as in the Style panel
    python scripts/demo.py --clip some.bvh      # show an imported BVH instead
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

DEFAULT_PROMPT = "a person waves with the right hand"


RIGS = REPO.parent / "shared" / "rigs"


def add_skinned_character(bpy, bridge, name: str, arm, action, first: int, last: int):
    """Import the glTF character `name` from ../shared/rigs 1 m to the metarig's left (+X) and key the
    metarig's motion on it (read back from the metarig's action); None where the file is missing."""
    import addon_utils

    path = RIGS / name
    if not name or not path.is_file():
        return None
    addon_utils.enable("io_scene_gltf2", default_set=True)
    before = set(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=str(path))
    new = set(bpy.data.objects) - before
    char = next(o for o in new if o.type == "ARMATURE")
    for o in new:
        if o.parent is None:
            o.location.x += 1.0
        if o.type == "MESH":
            o.color = (0.85, 0.72, 0.55, 1.0)
    fps = bridge.scene_fps(bpy.context.scene)
    clip = bridge.read_clip(arm, action, first, last - first + 1, fps)
    bridge.write_clip(char, clip, action.name, first)
    bridge.assign_action_slot(char, char.animation_data.action)
    return char


def use_styles(bpy, scene, specs) -> str | None:
    """Tick the Style panel's presets named in `specs` ("name" or "name:strength", strength 1 by
    default), and no others, for the next generation, as an animator would; a message when one is not
    there. No specs: the panel is left as it is."""
    if not specs:
        return None
    bpy.ops.marionette.refresh_styles()
    items = {it.name: it for it in scene.marionette_style.items}
    for it in items.values():  # these styles and no others
        it.active = False
    for spec in specs:
        name, _, strength = spec.partition(":")
        if name not in items:
            return f"no style '{name}' (there are: {', '.join(sorted(items))})"
        try:
            value = float(strength or 1.0)
        except ValueError:
            return f"style strength must be a number: '{spec}'"
        items[name].active, items[name].strength = True, value
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(REPO / "out"))
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clip", default=None, help="import this BVH file instead of generating")
    ap.add_argument("--frames", type=int, default=8, help="stills on the contact sheet")
    ap.add_argument("--no-movie", action="store_true", help="contact sheet only")
    ap.add_argument("--style", action="append", default=[], metavar="NAME[:STRENGTH]",
                    help="use this style preset (the Style panel's list), at this strength (default 1); repeatable")
    ap.add_argument("--character", default="quaternius_human_male.glb",
                    help="skinned character from ../shared/rigs shown beside the metarig ('' for none)")
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
    import torch

    torch.set_num_threads(2)
    if args.clip:
        if bpy.ops.marionette.import_motion(filepath=str(args.clip)) != {"FINISHED"}:
            print("demo: import failed", file=sys.stderr)
            return 1
        label = Path(args.clip).name
    else:
        settings = scene.marionette
        settings.prompt, settings.seconds, settings.seed = args.prompt, args.seconds, args.seed
        problem = use_styles(bpy, scene, args.style)
        if problem:
            print(f"demo: {problem}", file=sys.stderr)
            return 1
        scene.frame_current = 1
        t_gen = time.time()
        if bpy.ops.marionette.generate() != {"FINISHED"}:
            print("demo: generation failed", file=sys.stderr)
            return 1
        styles = f", style {' + '.join(args.style)}" if args.style else ""
        label = (f'"{args.prompt}" ({args.seconds:g} s, seed {args.seed}{styles}, '
                 f'{time.time() - t_gen:.1f} s incl. model load)')
        hint = bpy.context.window_manager.marionette_job.hint
        if hint:
            print(f"demo: {hint}")
        read_as = bpy.context.window_manager.marionette_job.read_as
        if read_as:
            print(f'demo: read the prompt as "{read_as}"')
    action = arm.animation_data.action
    first, last = (int(round(v)) for v in action.frame_range)
    scene.frame_start, scene.frame_end = first, last

    align = ext.bridge.armature_alignment(arm)
    bones = [align.skeleton.names[m] for m in align.mapping if m >= 0]
    preview.add_bone_meshes(arm, bones)
    # The same motion on a skinned CC0 character beside the metarig: knees, soles and the floor
    # show on a mesh what prisms hide.
    skinned = add_skinned_character(bpy, ext.bridge, args.character, arm, action, first, last)
    preview.setup_stage(scene, arm, follow_bone=bones[0], side_offset=0.5 if skinned else 0.0)
    blend = os.path.join(args.out, "demo.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)

    frames = [int(round(f)) for f in np.linspace(first, last, args.frames)]
    sheet = os.path.join(args.out, "demo.png")
    preview.contact_sheet(scene, frames, sheet)
    mp4 = os.path.join(args.out, "demo.mp4")
    if args.no_movie:
        mp4 = "(no movie)"
    else:
        preview.movie(scene, mp4, first, last)
    print(
        f"demo: {label} -> '{arm.name}' action '{action.name}' ({last - first + 1} frames)\n"
        f"      wrote {blend}, {sheet}, {mp4} in {time.time() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
