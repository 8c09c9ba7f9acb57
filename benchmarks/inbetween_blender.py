"""In-betweening as it reaches the animator's Action: the In-between operator on Rigify's metarig
(the add-on loaded as a real extension in the bpy module), measured on the F-curves it writes.

    python -m benchmarks.inbetween_blender [--limit N] [--steps S]     # prints one JSON line

Per centred 8-s window of each held-out test clip (as `benchmarks.inbetween.block_windows`): the real
motion is keyed densely onto the metarig at the scene's rate and read back (the reference); every
frame but one per second is deleted, leaving whole-pose keys with Blender's default interpolation
(Bezier, auto-clamped handles) - the animator's blocking; the operator in-betweens it into a new
Action. Blender evaluates all three; errors are joint positions (canonical metres) on the unkeyed
frames. See benchmarks/README.md for every key.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

KEY_EVERY_S = 1.0


def _channels(bridge, action, obj) -> dict:
    return {(fc.data_path, fc.array_index): fc for fc in bridge.action_fcurves(action, obj)}


def block(bridge, action, obj, keep: set) -> None:
    """Delete every key not on a frame in `keep`; the rest get Blender's default auto-clamped handles."""
    for fc in bridge.action_fcurves(action, obj):
        kp = fc.keyframe_points
        for i in reversed(range(len(kp))):
            if int(round(kp[i].co[0])) not in keep:
                kp.remove(kp[i], fast=True)
        for k in kp:
            k.interpolation = "BEZIER"
            k.handle_left_type = k.handle_right_type = "AUTO_CLAMPED"
        fc.update()


def key_error(bridge, blocking, result, obj) -> float:
    """Largest deviation of a keyed channel from the animator's value in `result`, read from its F-curves."""
    out = _channels(bridge, result, obj)
    worst = 0.0
    for key, fc in _channels(bridge, blocking, obj).items():
        for k in fc.keyframe_points:
            f, v = k.co
            worst = max(worst, abs(out[key].evaluate(f) - v))
    return worst


def measure_clip(bpy, bridge, obj, window, fps: float, seed: int) -> dict:
    """One 8-s window at `fps`: errors of the in-betweens and of Blender's interpolation, key error, pops."""
    from benchmarks.evaluator import velocity_jumps

    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(fps), 1.0
    real = window.resample(fps)
    n = real.num_frames
    dense = bridge.write_clip(obj, real, "real", 1, foot_lock=False)
    gt = bridge.read_clip(obj, dense, 1, n, fps).positions()
    every = int(round(KEY_EVERY_S * fps))
    keys = set(range(1, n + 1, every))
    blocking = dense.copy()
    blocking.name = "blocking"
    block(bridge, blocking, obj, keys)
    obj.animation_data.action = blocking
    bridge.assign_action_slot(obj, blocking)
    interp = bridge.read_clip(obj, blocking, 1, n, fps).positions()
    scene.frame_start, scene.frame_end, scene.use_preview_range = 1, n, False
    s = scene.marionette
    s.inbetween.seed, s.inbetween.output, s.inbetween.variations, s.inbetween.key_every = seed, "NEW_ACTION", 1, 1
    s.inbetween.use_scene_range, s.inbetween.prompt = True, ""
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    result = obj.animation_data.action
    model = bridge.read_clip(obj, result, 1, n, fps).positions()
    free = np.setdiff1d(np.arange(n), np.array(sorted(keys)) - 1)
    inner = np.array(sorted(k for k in keys if 1 < k < n)) - 1  # frame index of each inner key
    out = {
        "model_err": float(np.linalg.norm(model - gt, axis=-1)[free].mean()),
        "interp_err": float(np.linalg.norm(interp - gt, axis=-1)[free].mean()),
        "key_err": key_error(bridge, blocking, result, obj),
        "pop": float(velocity_jumps(model)[inner - 1].max()),
    }
    for a in (dense, blocking, result):
        bpy.data.actions.remove(a)
    return out


def latency(bpy, bridge, obj, window, repeats: int = 3) -> dict:
    """Press to keys for a 2-s gap between two whole-pose keys on the metarig at 24 fps (warm, median)."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    real = window.resample(24).slice(0, 49)
    dense = bridge.write_clip(obj, real, "two keys", 1, foot_lock=False)
    block(bridge, dense, obj, {1, 49})
    scene.frame_start, scene.frame_end = 1, 49
    times = []
    for seed in range(repeats + 1):
        obj.animation_data.action = dense
        bridge.assign_action_slot(obj, dense)
        scene.marionette.inbetween.seed = seed
        t0 = time.perf_counter()
        assert bpy.ops.marionette.inbetween() == {"FINISHED"}
        times.append(time.perf_counter() - t0)
        bpy.data.actions.remove(obj.animation_data.action)
    return {"inb_latency_s_cpu": statistics.median(times[1:]), "inb_latency_cold_s_cpu": times[0]}


def measure(limit: int = 0, steps: int | None = None, threads: int = 1) -> dict:
    from scripts.blender_env import load_extension, reset_scene

    pkg = load_extension()
    import importlib

    import bpy
    import torch

    from benchmarks.evaluator import velocity_jumps
    from benchmarks.inbetween import by_label, block_windows, split_clips, split_sources
    from training import build_dataset

    torch.set_num_threads(threads)
    bridge = importlib.import_module(pkg.__name__ + ".bridge")
    meta, rot, root, _ = build_dataset.load()
    clips = split_clips(meta, np.asarray(rot), np.asarray(root), "test")
    wins, labels = block_windows(clips, limit, split_sources(meta, "test"))
    reset_scene()
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    prefs = bpy.context.preferences.addons[pkg.__name__].preferences
    prefs.device = "CPU"
    if steps is not None:
        bpy.context.scene.marionette.steps = steps
    t0 = time.time()
    rows = {24: [], 30: []}
    for i, w in enumerate(wins):
        rows[24].append(measure_clip(bpy, bridge, obj, w, 24.0, seed=i))
        rows[30].append(measure_clip(bpy, bridge, obj, w, 30.0, seed=i))
    # the real data's 99th percentile of the per-frame largest joint-velocity change (the whole test
    # split at its own rate), brought to 24 fps: a velocity change per frame scales with 1/fps^2
    p99 = float(np.percentile(np.concatenate([velocity_jumps(c.positions()) for c in clips if c.num_frames > 2]),
                              99)) * (clips[0].fps / 24.0) ** 2
    r24, r30 = rows[24], rows[30]
    out = {
        "inb_blender_blocking_ratio": float(np.mean([r["model_err"] for r in r24]) /
                                            np.mean([r["interp_err"] for r in r24])),
        "inb_blender_model_err_m": float(np.mean([r["model_err"] for r in r24])),
        "inb_blender_interp_err_m": float(np.mean([r["interp_err"] for r in r24])),
        "inb_blender_blocking_ratio_30": float(np.mean([r["model_err"] for r in r30]) /
                                               np.mean([r["interp_err"] for r in r30])),
        "inb_key_err_max_24": max(r["key_err"] for r in r24),
        "inb_key_err_max_30": max(r["key_err"] for r in r30),
        "inb_pop_written": float(np.median([r["pop"] for r in r24]) / p99),
        "inb_pop_written_max": float(max(r["pop"] for r in r24) / p99),
        "inb_blender_clips": len(wins),
    }
    out["inb_key_err_max"] = max(out["inb_key_err_max_24"], out["inb_key_err_max_30"])
    # the same ratio over each source's windows (Bandai-Namco takes, CMU takes: dancing above all)
    by_label(out, "inb_blender_blocking_ratio", [r["model_err"] for r in r24], [r["interp_err"] for r in r24], labels)
    out["inb_blender_seconds"] = round(time.time() - t0, 1)
    torch.set_num_threads(2)  # latency as the animator gets it, like t2m_blender_latency_s_cpu
    out.update(latency(bpy, bridge, obj, wins[0]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="at most N test clips")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the panel's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.limit, args.steps, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
