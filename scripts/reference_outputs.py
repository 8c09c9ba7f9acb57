"""Fixed-seed outputs of every generation mode, saved or compared, to prove a refactor changes nothing.

    MARIONETTE_MODEL=/tmp/refmodel .venv/bin/python scripts/reference_outputs.py --save /tmp/ref.npz
    MARIONETTE_MODEL=/tmp/refmodel .venv/bin/python scripts/reference_outputs.py --compare /tmp/ref.npz

Runtime (`inference.generation.generate.Generator`, CPU): text to motion (4 s, and 9 s over several windows),
a keyframed in-between, kept body parts (joint mask) and a root path (trajectory mask). Blender
(the Generate operator in the bpy module): the keys (values and both handles of every F-curve)
written onto Rigify's metarig, with Keep Feet Planted on, and on the canonical skeleton with
two variations. Only the outputs before any behaviour change are compared (`--skip` leaves a case out).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def runtime_outputs() -> dict[str, np.ndarray]:
    import torch

    torch.set_num_threads(1)
    from inference.generation.generate import Generator, joint_mask, keyframe_mask, trajectory_mask

    gen = Generator(os.environ.get("MARIONETTE_MODEL") or None, "cpu")
    out: dict[str, np.ndarray] = {}

    def put(name, res):
        out[f"{name}/rotations"] = res.clip.rotations
        out[f"{name}/root"] = res.clip.root_translation
        out[f"{name}/contacts"] = np.asarray(res.contacts)

    t2m = gen.generate("a person walks forward", seconds=4.0, seed=0)
    put("t2m_4s", t2m)
    put("t2m_9s", gen.generate("a person waves with the right hand", seconds=9.0, seed=1))
    ref = t2m.clip
    n = ref.num_frames
    put("inbetween", gen.generate("a person jumps", known=ref, mask=keyframe_mask(n, [0, 30, n - 1]), seed=2))
    legs = ["pelvis", "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee",
            "right_ankle", "right_foot"]
    put("joints", gen.generate("a person waves both hands", known=ref, mask=joint_mask(n, legs, root=True), seed=3))
    put("trajectory", gen.generate("a person runs", known=ref, mask=trajectory_mask(n, frames=[0, 40, n - 1]),
                                   seed=4))
    return out


def blender_outputs() -> dict[str, np.ndarray]:
    import importlib

    from scripts.blender_env import PACKAGE, load_extension, reset_scene

    load_extension()
    import bpy

    bridge = importlib.import_module(PACKAGE + ".bridge")
    out: dict[str, np.ndarray] = {}
    cases = [("rigify", "RIGIFY", dict(prompt="a person walks forward", seconds=3.0, seed=0, variations=1)),
             ("canonical", "CANONICAL", dict(prompt="a person waves with the right hand", seconds=2.0, seed=5,
                                             variations=2))]
    for name, kind, kw in cases:
        scene = reset_scene()
        scene.render.fps = 24
        scene.frame_current = 1
        bpy.ops.marionette.add_character(character_type=kind)
        obj = bpy.context.view_layer.objects.active
        s = scene.marionette
        s.steps, s.guidance, s.use_current_frame, s.foot_lock = 10, 2.5, True, True
        for k, v in kw.items():
            setattr(s, k, v)
        assert bpy.ops.marionette.generate() == {"FINISHED"}
        for take, item in enumerate(obj.marionette_variations):
            for fc in bridge.action_fcurves(item.action, obj):
                k = len(fc.keyframe_points)
                arr = np.zeros((3, k * 2), np.float32)
                fc.keyframe_points.foreach_get("co", arr[0])
                fc.keyframe_points.foreach_get("handle_left", arr[1])
                fc.keyframe_points.foreach_get("handle_right", arr[2])
                out[f"{name}/v{take}/{fc.data_path}[{fc.array_index}]"] = arr
            if item.action.get("marionette_note"):
                out[f"{name}/v{take}/note"] = np.array(str(item.action["marionette_note"]))
        ob = obj.animation_data.action
        out[f"{name}/range"] = np.array(ob.frame_range)
    return out


def compare(ref: dict, new: dict) -> list[str]:
    problems = []
    for k in sorted(set(ref) | set(new)):
        if k not in new:
            problems.append(f"missing now: {k}")
        elif k not in ref:
            problems.append(f"new now: {k}")
        elif ref[k].shape != new[k].shape:
            problems.append(f"shape {k}: {ref[k].shape} -> {new[k].shape}")
        elif not np.array_equal(ref[k], new[k]):
            d = np.abs(np.asarray(ref[k], float) - np.asarray(new[k], float)).max()
            problems.append(f"differs {k}: max |diff| {d:.3g}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--compare", type=Path)
    ap.add_argument("--skip", choices=["runtime", "blender"], action="append", default=[])
    args = ap.parse_args(argv)
    new = {}
    if "runtime" not in args.skip:
        new.update(runtime_outputs())
    if "blender" not in args.skip:
        new.update(blender_outputs())
    if args.save:
        np.savez_compressed(args.save, **new)
        print(f"saved {len(new)} arrays to {args.save}")
        return 0
    with np.load(args.compare) as f:
        ref = {k: f[k] for k in f.files}
    if args.skip:
        prefixes = ("t2m", "inbetween", "joints", "trajectory") if "runtime" in args.skip else ()
        prefixes += ("rigify", "canonical") if "blender" in args.skip else ()
        ref = {k: v for k, v in ref.items() if not k.startswith(prefixes)}
    problems = compare(ref, new)
    for p in problems[:40]:
        print(p)
    print(f"{len(ref)} reference arrays, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
