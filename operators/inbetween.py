"""In-betweening between the animator's keyframes on the active armature, off the main thread.

On the main thread: the keyed frames in the range are read as canonical poses
(`bridge.keyed_poses`) and become known values on the model's grid (`inference.generation.inbetween`), without
moving any key. The job runs the request; back on the main thread the model's motion is time-scaled
onto the scene's frames, retargeted (`bridge.write_clip`) and merged into the action's in-between
frames only (`bridge.merge_inbetweens`): the animator's keys stay exactly as they were.
"""
from __future__ import annotations

import bpy
import numpy as np

from .. import preferences
from ..inference.generation import job as jobs
from ..inference.generation.job import Job
from ..inference.generation.request import MAX_SECONDS, GenerationRequest, PostProcess
from .common import JobOperator, active_armature, missing_message, model_fps, running_job
from .generate import RUNTIME

OUTPUTS = ("NEW_ACTION", "IN_PLACE")


class InbetweenJob(Job):
    """One In-between click: the keyed poses, the request built from them, and where the result goes."""

    def __init__(self, request, target: str, action: str, keys, idx, animator: dict, fill: np.ndarray,
                 output: str, settings: dict):
        super().__init__(lambda on_progress: self._generate(on_progress), "marionette-inbetween")
        self.request, self.target, self.action = request, target, action
        self.keys, self.idx, self.animator, self.fill = keys, idx, animator, fill
        self.output = output
        self.settings = settings
        """scale_root, foot_lock: how the result is retargeted (as when the keys were read)."""

    def _generate(self, on_progress):
        from ..inference.generation.generate import Generator

        r = self.request
        return Generator.shared(r.model_dir or None, r.device).run(r, on_progress)


def frame_range(context) -> tuple[int, int]:
    """The In-between range: the preview range (or the scene's) unless the animator set one."""
    s, scene = context.scene.marionette.inbetween, context.scene
    if not s.use_scene_range:
        return s.frame_start, s.frame_end
    if scene.use_preview_range:
        return scene.frame_preview_start, scene.frame_preview_end
    return scene.frame_start, scene.frame_end


def make_job(context, obj) -> InbetweenJob:
    """Read the keys and build the request (raises `MotionError`/`RequestError` with a message for the user)."""
    from .. import bridge
    from ..inference.generation import inbetween
    from ..inference.generation.inbetween import InbetweenError

    scene, settings = context.scene, context.scene.marionette
    s = settings.inbetween
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise InbetweenError(f"'{obj.name}' has no action: key at least two poses first.")
    if action.library is not None or getattr(action, "override_library", None) is not None:
        raise InbetweenError(f"The action '{action.name}' is linked from another file; make it local "
                             "(Object > Relations > Make Local) to in-between it.")
    locked = bridge.locked_channels(action, obj)
    if locked:
        raise InbetweenError(f"The action '{action.name}' has locked channels ({', '.join(locked[:3])}); "
                             "unlock them in the Graph Editor to in-between it.")
    if s.output == "IN_PLACE" and s.variations > 1:
        raise InbetweenError("In place writes one take; set Variations to 1, or write new Actions.")
    a, b = frame_range(context)
    if b <= a:
        raise InbetweenError(f"The frame range {a}-{b} is empty; set an end frame after the start frame.")
    keys, animator = bridge.keyed_poses(obj, action, (a, b), scale_root=settings.scale_root)
    prefs = preferences.get(context)
    model_dir = prefs.model_dir if prefs else ""
    fps = model_fps(model_dir)
    known, idx = inbetween.constraints(keys, fps)
    seconds = known.num_frames / fps
    if seconds > MAX_SECONDS:
        raise InbetweenError(f"The keys span {seconds:.1f} s; Marionette in-betweens up to {MAX_SECONDS:g} s "
                             "at a time. Narrow the frame range and run it in parts.")
    request = GenerationRequest(
        prompt=s.prompt.strip(), seconds=seconds, scene_fps=bridge.scene_fps(scene),
        seeds=tuple(s.seed + i for i in range(s.variations)), steps=settings.steps, guidance=settings.guidance,
        device=prefs.device if prefs else "AUTO", model_dir=model_dir, constraints=known,
        post=PostProcess(foot_lock=None if settings.foot_lock else False))
    fill = np.union1d(inbetween.fill_frames(keys, s.key_every), keys.frames[keys.frames == np.round(keys.frames)])
    return InbetweenJob(request, obj.name, action.name, keys, idx, animator, fill, s.output,
                        {"scale_root": settings.scale_root, "foot_lock": settings.foot_lock})


def validate(context, obj) -> str | None:
    if obj is None or obj.type != "ARMATURE":
        return "Select the armature whose keys to in-between."
    if context.mode not in {"OBJECT", "POSE"}:
        return "Switch to Object or Pose Mode to in-between."
    msg = missing_message(RUNTIME)
    if msg:
        return msg
    if running_job() is not None:
        return "An in-between is already running."
    return None


def poll_job(job: InbetweenJob, context) -> str:
    """One poll step: 'RUNNING', 'FINISHED', 'CANCELLED' or 'ERROR'. Writes the keys when done."""
    state = context.window_manager.marionette_job
    seen = jobs.poll(job)
    if seen.status == jobs.RUNNING:
        state.running = True
        state.progress = seen.progress
        state.status = f"In-betweening: step {seen.step} of {seen.total} (Esc cancels)"
        return seen.status
    state.running = False
    state.progress = 1.0 if seen.status == jobs.FINISHED else 0.0
    if seen.status == jobs.CANCELLED:
        state.status = "In-between cancelled"
    elif seen.status == jobs.ERROR:
        state.status = f"In-between failed: {seen.error}"
    else:
        write_results(job, context)
    return seen.status


def write_results(job: InbetweenJob, context) -> list:
    """Merge each take into the action's in-between frames (main thread only)."""
    from .. import bridge

    obj = bpy.data.objects.get(job.target)
    original = bpy.data.actions.get(job.action)
    if obj is None or original is None:
        raise RuntimeError(f"The armature '{job.target}' or its action '{job.action}' is gone.")
    keys, fake = job.keys, original.use_fake_user
    span = (float(keys.frames[0]), float(keys.frames[-1]))
    takes = list(job.result.takes)
    out: list = []
    try:
        written = _write_takes(job, obj, original, takes, span, out)
    except Exception:
        # nothing half-written stays: the animator's action back on the rig, new actions removed
        obj.animation_data.action = original
        bridge.assign_action_slot(obj, original)
        original.use_fake_user = fake
        for a in out:
            if a != original:
                bpy.data.actions.remove(a)
        raise
    if job.output == "IN_PLACE":
        original.use_fake_user = fake
    else:
        original.use_fake_user = True  # the animator's blocking stays in the file, untouched
        for a in out:
            a.use_fake_user = len(out) > 1
        obj.marionette_variations.clear()
        for a, take in zip(out, takes):
            item = obj.marionette_variations.add()
            item.action, item.seed, item.prompt = a, take.seed, job.request.prompt
        obj.marionette_variation_index = 0
    obj.animation_data.action = out[0]
    bridge.assign_action_slot(obj, out[0])
    state = context.window_manager.marionette_job
    state.hint = ""
    state.read_as = getattr(takes[0], "read_as", "") if takes else ""
    where = "in place" if job.output == "IN_PLACE" else f"into {len(out)} new action(s)"
    state.status = (f"In-betweened {len(keys.frames)} keyed frames ({span[0]:g}-{span[1]:g}) {where}: "
                    f"{written} keys in {job.elapsed:.1f} s")
    return out


def _write_takes(job: InbetweenJob, obj, original, takes, span, out: list) -> int:
    from .. import bridge
    from ..inference.generation import inbetween

    keys = job.keys
    whole = np.arange(np.ceil(span[0]), np.floor(span[1]) + 1)
    written = 0
    for i, take in enumerate(takes):
        clip = inbetween.to_scene(take.clip, keys, job.idx, whole)
        dense = bridge.write_clip(obj, clip, "marionette in-between (temporary)", int(whole[0]), fps=None,
                                  scale_root=job.settings["scale_root"], root_motion="HIP",
                                  foot_lock=job.settings["foot_lock"],
                                      level_feet=False)  # around the animator's keys: this rig's flat foot
        try:
            if job.output == "IN_PLACE":
                target = original
            else:
                target = original.copy()
                target.name = f"{original.name} in-between" + (f" v{i + 1}" if len(takes) > 1 else "")
                target["marionette_request"] = job.result.record(i)
                out.append(target)
            obj.animation_data.action = target
            bridge.assign_action_slot(obj, target)
            written += bridge.merge_inbetweens(obj, target, dense, span, job.fill)
        finally:
            bpy.data.actions.remove(dense)
        if job.output == "IN_PLACE":
            out.append(target)
    return written


class MARIONETTE_OT_inbetween(JobOperator, bpy.types.Operator):
    """Generate every frame between the keyed poses in the frame range; your keys stay exactly as they are"""

    bl_idname = "marionette.inbetween"
    bl_label = "In-between"
    bl_options = {"REGISTER", "UNDO"}

    cancelled_message = "In-between cancelled; nothing was changed."

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None and running_job() is None

    def check(self, context) -> str | None:
        return validate(context, context.active_object)

    def make_job(self, context) -> InbetweenJob:
        return make_job(context, context.active_object)

    def poll_job(self, job, context) -> str:
        return poll_job(job, context)


class MARIONETTE_OT_inbetween_range_from_keys(bpy.types.Operator):
    """Set the In-between range to the keys selected in the Dope Sheet or Graph Editor"""

    bl_idname = "marionette.inbetween_range_from_keys"
    bl_label = "From Selected Keys"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None

    def execute(self, context):
        from .. import bridge

        r = bridge.selected_key_range(context.active_object)
        if r is None:
            self.report({"ERROR"}, "Select keys in the Dope Sheet or Graph Editor first (on the active armature's action).")
            return {"CANCELLED"}
        s = context.scene.marionette.inbetween
        s.use_scene_range = False
        s.frame_start, s.frame_end = r
        return {"FINISHED"}


classes = (MARIONETTE_OT_inbetween, MARIONETTE_OT_inbetween_range_from_keys)
register, unregister = bpy.utils.register_classes_factory(classes)
