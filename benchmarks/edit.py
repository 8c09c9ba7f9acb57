"""Body-part editing on the held-out test split: prompts naming a different content than the source.

    python -m benchmarks.edit [--limit N] [--steps S] [--no-blender]     # prints one JSON line

Two edit kinds on every test clip of at least 3 s (the rest of the clip is the context):
  - upper body regenerated on walks (walk, walk-turn-*, walk-left/right/back) with "a person waves
    both hands" or "a person raises the right hand" (alternating), lower body and root path kept, on
    the middle half of the clip;
  - from a quarter in to the clip's end (a regenerated root path need not return to the old one), lower body (legs, pelvis, root path) regenerated on upper-body gestures (raise-up-*, wave-*)
    with "a person runs forward", upper body kept.
The runtime runs at the dataset's 20 fps here (`inference.generation.edit.plan` with scene fps 20).

How the evaluator isolates a part (it reads whole bodies): the clip is shown inside the edited
frame range only (outside it the clip is the source by construction), with the OTHER part
neutralised - its joints at the canonical rest pose and, where the root is not the edited part's,
the root held at its first frame - so only the part in question moves.
  edit_content_acc: edited clip, kept part neutralised, classified as the prompted content
    (_whole_clip: the whole clip read, the unedited frames around the range included, as until 2026-11-29).
  edit_content_acc_source: the source, neutralised the same way, classified as the prompted content
    (the baseline: how often the source part alone already reads as the prompt).
  edit_source_content_acc: the full edited clip is classified as the source's content for lower-body
    kept edits (walks stay walks under new arms), and the kept upper body alone (edited legs
    neutralised) reads as the source content for upper-body kept edits; both divided by the same
    check on the unedited source, so 1.0 = as recognisable as before.
  edit_boundary_pop: largest joint-velocity jump on the two frames at each end of the range, over
    the real test clips' 99th percentile of per-frame jumps (median over edits; _max the worst).
  edit_skate_ratio / edit_source_skate_ratio: foot-skating share of frames (evaluator.physical),
    edited vs source, over the edits that keep the lower body, and over all edits (_all).
  edit_kept_err_max: with --blender (default), the first 3 edits of each kind are run through the
    Edit Parts operator on Rigify's metarig; the largest difference (key values, radians/units)
    between any kept channel's keys in the written Action and the source Action's.
  edit_latency_s_cpu: one edit of a 4-s clip (2-s range), default steps, 1 CPU thread, median of 3.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from inference.generation.edit import EditedParts, plan
from inference.generation.generate import DEFAULT_GUIDANCE, DEFAULT_STEPS, Generator
from inference.body.motion import MotionClip
from inference.generation.request import GenerationRequest
from inference.body.skeleton import JOINT_NAMES

from .evaluator import Evaluator, motion_features, physical, velocity_jumps

WALKS = ("walk", "walk-turn-left", "walk-turn-right", "walk-left", "walk-right", "walk-back")
GESTURES = ("raise-up-right-hand", "raise-up-both-hands", "raise-up-left-hand", "wave-left-hand",
            "wave-both-hands", "wave-right-hand")
UPPER_PROMPTS = (("a person waves both hands", "wave-both-hands"),
                 ("a person raises the right hand", "raise-up-right-hand"))
LOWER_PROMPT = ("a person runs forward", "run")
MIN_FRAMES = 60


def neutralise(clip: MotionClip, joints, hold_root: bool) -> MotionClip:
    rot = clip.rotations.copy()
    rot[:, [JOINT_NAMES.index(j) for j in joints]] = (1.0, 0.0, 0.0, 0.0)
    root = clip.root_translation.copy()
    if hold_root:
        root[:] = root[0]
    return MotionClip(rot, root, clip.fps)


def cases(meta, rot, root, limit: int):
    """(source clip, edited parts, prompt, prompted content, source content) per edit, both kinds."""
    test = [c for c in meta["clips"] if c["split"] == "test" and not c["mirrored"] and c["length"] >= MIN_FRAMES]
    walks = [c for c in test if c["content"] in WALKS]
    gestures = [c for c in test if c["content"] in GESTURES]
    if limit:
        walks, gestures = walks[:limit], gestures[:limit]
    out = []
    for i, c in enumerate(walks):
        p, target = UPPER_PROMPTS[i % 2]
        out.append((c, EditedParts.from_parts(["upper_body"]), p, target))
    for c in gestures:
        out.append((c, EditedParts.from_parts(["lower_body"]), *LOWER_PROMPT))
    clips = [MotionClip(rot[c["start"]:c["start"] + c["length"]], root[c["start"]:c["start"] + c["length"]],
                        meta["fps"]) for c, *_ in out]
    return [(clip, e, p, t, c["content"]) for clip, (c, e, p, t) in zip(clips, out)]


def edit(gen: Generator, clip: MotionClip, e: EditedParts, prompt: str, seed: int, steps: int, guidance: float):
    """The edited clip (source frames outside the range) and the range (a, b), at the clip's rate."""
    n = clip.num_frames
    # the root regenerated: the range runs to the clip's end, so the new path need not return to the old one
    a, b = n // 4, (n - 1 if e.root else n - 1 - n // 4)
    p = plan(clip, 0.0, (a, b), e, gen.fps)
    req = GenerationRequest(prompt, seconds=p.constraints.num_frames / gen.fps, scene_fps=clip.fps, seeds=(seed,),
                            steps=steps, guidance=guidance, constraints=p.constraints)
    take = gen.run(req).takes[0]
    from inference.generation.edit import to_scene

    inside = to_scene(take.clip, p, np.arange(a, b + 1), clip.fps)
    r, t = clip.rotations.copy(), clip.root_translation.copy()
    idx = [JOINT_NAMES.index(j) for j in e.joints]
    r[a:b + 1, idx] = inside.rotations[:, idx]
    if e.root:
        t[a:b + 1] = inside.root_translation
    return MotionClip(r, t, clip.fps), (a, b)


def measure(limit: int = 0, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
            blender: bool = True) -> dict:
    from training import build_dataset

    meta, rot, root, _ = build_dataset.load()
    rot, root = np.asarray(rot), np.asarray(root)
    ev = Evaluator.load()
    gen = Generator(None, "cpu")
    all_cases = cases(meta, rot, root, limit)
    real = [MotionClip(rot[c["start"]:c["start"] + c["length"]], root[c["start"]:c["start"] + c["length"]], meta["fps"])
            for c in meta["clips"] if c["split"] == "test" and not c["mirrored"] and c["length"] > 2]
    p99 = float(np.percentile(np.concatenate([velocity_jumps(c.positions()) for c in real]), 99))
    rows = []
    t0 = time.time()
    for i, (clip, e, prompt, target, content) in enumerate(all_cases):
        out, (a, b) = edit(gen, clip, e, prompt, i, steps, guidance)
        kept = e.kept_joints
        # read inside the edited range: outside it the clip is the source by construction
        o, c = out.slice(a, b + 1), clip.slice(a, b + 1)
        feats = [motion_features(x.rotations, x.root_translation, clip.fps) for x in (
            neutralise(o, kept, hold_root=not e.root), neutralise(c, kept, hold_root=not e.root),
            o, c, neutralise(o, e.joints, hold_root=e.root), neutralise(c, e.joints, hold_root=e.root),
            neutralise(out, kept, hold_root=not e.root))]
        pred = [ev.contents[k] for k in ev.predict(feats)[1]]
        jumps = velocity_jumps(out.positions())  # index t-1 <-> frame t
        ends = [f - 1 for f in (a, a + 1, b, b + 1) if 1 <= f <= clip.num_frames - 2]
        lower_kept = not e.root
        src_ok = (pred[4] == content, pred[5] == content)  # the kept part alone
        rows.append({"content_ok": pred[0] == target, "content_whole": pred[6] == target,
                     "content_src": pred[1] == target, "src_ok": src_ok[0],
                     "src_base": src_ok[1], "pop": float(jumps[ends].max()) / p99, "lower_kept": lower_kept,
                     "skate": physical(out.positions(), clip.fps)["skate"],
                     "skate_src": physical(clip.positions(), clip.fps)["skate"]})
    seconds = time.time() - t0

    def mean(key, rs=rows):
        return float(np.mean([r[key] for r in rs])) if rs else float("nan")

    kept_rows = [r for r in rows if r["lower_kept"]]
    res = {
        "edit_cases": len(rows), "edit_upper_cases": len(kept_rows),
        "edit_content_acc": mean("content_ok"), "edit_content_acc_source": mean("content_src"),
        "edit_content_acc_whole_clip": mean("content_whole"),
        "edit_content_acc_upper": mean("content_ok", kept_rows),
        "edit_content_acc_lower": mean("content_ok", [r for r in rows if not r["lower_kept"]]),
        "edit_source_content_acc": mean("src_ok") / max(mean("src_base"), 1e-9),
        "edit_source_content_acc_raw": mean("src_ok"), "edit_source_content_acc_unedited": mean("src_base"),
        "edit_boundary_pop": float(np.median([r["pop"] for r in rows])),
        "edit_boundary_pop_max": float(np.max([r["pop"] for r in rows])),
        "edit_skate_ratio": mean("skate", kept_rows), "edit_source_skate_ratio": mean("skate_src", kept_rows),
        "edit_skate_ratio_all": mean("skate"), "edit_source_skate_ratio_all": mean("skate_src"),
        "edit_seconds_per_case": seconds / max(1, len(rows)),
    }
    res["edit_latency_s_cpu"] = latency(gen, all_cases[0][0], steps, guidance)
    if blender:
        res["edit_kept_err_max"] = kept_error(all_cases[:3] + [c for c in all_cases if c[1].root][:3], steps)
    return res


def latency(gen: Generator, clip: MotionClip, steps: int, guidance: float) -> float:
    clip = MotionClip(np.resize(clip.rotations, (80, 22, 4)), np.resize(clip.root_translation, (80, 3)), clip.fps)
    times = []
    for s in range(3):
        t = time.perf_counter()
        edit(gen, clip, EditedParts.from_parts(["upper_body"]), "a person waves both hands", s, steps, guidance)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def kept_error(sel, steps: int) -> float:
    """Largest change to a kept channel's keys, through the Edit Parts operator on Rigify's metarig."""
    import importlib

    from scripts.blender_env import load_extension, reset_scene

    pkg = load_extension()
    import bpy

    bridge = importlib.import_module(pkg.__name__ + ".bridge")
    bridge_edit = importlib.import_module(pkg.__name__ + ".bridge.edit")
    skeleton = importlib.import_module(pkg.__name__ + ".inference.body.skeleton")
    worst = 0.0
    for clip, e, prompt, _, _ in sel:
        scene = reset_scene()
        scene.render.fps = 24
        scene.marionette.steps = steps
        bpy.ops.marionette.add_character(character_type="RIGIFY")
        obj = bpy.context.view_layer.objects.active
        src = bridge.write_clip(obj, clip.resample(24.0), "source", 1, fps=24.0)
        s = obj.marionette_edit
        s.parts = [p.name in e.parts for p in skeleton.BODY_PARTS]
        n = int(src.frame_range[1])
        s.use_whole_action, s.frame_start, s.frame_end, s.prompt = False, n // 4, n - n // 4, prompt
        assert bpy.ops.marionette.edit_parts() == {"FINISHED"}
        new = obj.animation_data.action
        ch = bridge_edit.RigChannels(obj)
        old = {(fc.data_path, fc.array_index): fc for fc in bridge.action_fcurves(src, obj)}
        for fc in bridge.action_fcurves(new, obj):
            bone, channel = bridge_edit._parse(fc.data_path)
            if ch.is_edited(bone, channel, set(e.joints), e.root):
                continue
            o = old[(fc.data_path, fc.array_index)]
            a, b = np.zeros(2 * len(o.keyframe_points)), np.zeros(2 * len(fc.keyframe_points))
            o.keyframe_points.foreach_get("co", a)
            fc.keyframe_points.foreach_get("co", b)
            worst = max(worst, float(np.abs(a - b).max()) if a.shape == b.shape else float("inf"))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0, help="at most N clips of each edit kind")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--no-blender", action="store_true", help="skip the operator pass (edit_kept_err_max)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.limit, args.steps, args.guidance, not args.no_blender)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
