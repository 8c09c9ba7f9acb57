"""Edit Parts: regenerate some body parts of the active armature's action inside a frame range.

On the main thread the action is read as canonical motion (`bridge.read_clip`) and the chosen parts
(body-part toggles from `skeleton.BODY_PARTS`, or the bones selected in Pose Mode through the rig's
bone map) become constraints (`inference.generation.edit`). The job runs the request; back on the main thread
each take is sampled at the scene's frames, retargeted (`bridge.write_clip`) and only the edited
channels are spliced into a copy of the action (`bridge.edit.merge_edit`): every other channel, and
every frame before the range, stays exactly as it was. After the range the edited channels stay as
they were too, except when the root's path is regenerated in the middle of the action and "Move the
Rest Along" is on (the default): then the frames after the range are moved rigidly (a turn about the
vertical and a shift on the ground) to start where the new path ends, instead of snapping back to
the old path (`inference.generation.edit.carried`, `bridge.edit.carry_rest`).

The panel's settings live on the armature object (`Object.marionette_edit`): the parts and the range
belong to that character's action.
"""
from __future__ import annotations

import json

import bpy
import numpy as np

from .. import preferences
from ..inference.generation import job as jobs
from ..inference.generation.job import Job
from ..inference.generation.request import MAX_SECONDS, GenerationRequest, PostProcess
from ..inference.body.skeleton import BODY_PARTS
from .common import JobOperator, active_armature, missing_message, model_fps, running_job
from .generate import RUNTIME


class MARIONETTE_PG_edit_parts(bpy.types.PropertyGroup):
    """Edit Parts panel: which parts, which frames, what they should do, and where the result goes."""

    parts: bpy.props.BoolVectorProperty(
        name="Body Parts", description="Body parts to regenerate (" + ", ".join(p.label for p in BODY_PARTS) + ")",
        size=len(BODY_PARTS), default=(False,) * len(BODY_PARTS),
    )
    use_selected_bones: bpy.props.BoolProperty(
        name="Selected Bones", description="Regenerate the bones selected in Pose Mode instead of the part toggles",
        default=False,
    )
    use_whole_action: bpy.props.BoolProperty(
        name="Whole Action", description="Edit every frame of the action", default=True,
    )
    frame_start: bpy.props.IntProperty(name="Start", description="First frame to regenerate", default=1)
    frame_end: bpy.props.IntProperty(name="End", description="Last frame to regenerate", default=100)
    carry_rest: bpy.props.BoolProperty(
        name="Move the Rest Along",
        description="When the root path is regenerated in a range the action goes on after: the frames after the "
                    "range move (turned and shifted over the ground) to continue from where the new path arrives. "
                    "Off: the new path comes back to the old one by the range's end",
        default=True,
    )
    prompt: bpy.props.StringProperty(
        name="Prompt", description="What the chosen parts should do (\"waves the right hand\", \"limps\")", default="",
    )
    seed: bpy.props.IntProperty(name="Seed", description="Same action, parts and seed: same edit", default=0, min=0)
    variations: bpy.props.IntProperty(
        name="Variations", description="How many different takes (each its own Action)", default=1, min=1, max=8,
    )
    output: bpy.props.EnumProperty(
        name="Output",
        items=[("NEW_ACTION", "New Action", "Write the edit into a copy of the action; the original is kept"),
               ("IN_PLACE", "In Place", "Write the edit into the action itself")],
        default="NEW_ACTION",
    )

    def chosen_parts(self) -> tuple[str, ...]:
        return tuple(p.name for p, on in zip(BODY_PARTS, self.parts) if on)


class EditJob(Job):
    """One Edit Parts click: the request, how its grid sits on the scene, and where the result goes."""

    def __init__(self, request, target: str, action: str, plan, edited, bones: tuple, output: str, settings: dict):
        super().__init__(lambda on_progress: self._generate(on_progress), "marionette-edit-parts")
        self.request, self.target, self.action, self.plan = request, target, action, plan
        self.edited, self.bones, self.output, self.settings = edited, bones, output, settings

    def _generate(self, on_progress):
        from ..inference.generation.generate import Generator

        r = self.request
        return Generator.shared(r.model_dir or None, r.device).run(r, on_progress)


def edited_parts(obj, s):
    """The joints to regenerate from the toggles or the selected bones (raises `EditError`)."""
    from ..bridge import edit as bridge_edit
    from ..inference.generation.edit import EditedParts, EditError, joints_of_bones

    if not s.use_selected_bones:
        return EditedParts.from_parts(s.chosen_parts()), ()
    bones = bridge_edit.selected_bones(obj)
    if not bones:
        raise EditError("No bones are selected: select the bones to regenerate in Pose Mode, or use the part toggles.")
    joints = joints_of_bones(bones, bridge_edit.RigChannels(obj).bones_of_joint())
    if not joints:
        raise EditError(f"The selected bone(s) {', '.join(bones[:4])} play no body part Marionette animates; "
                        "select body bones (see the Bone Map) or use the part toggles.")
    return EditedParts(joints), tuple(bones)


def make_job(context, obj) -> EditJob:
    """Read the action and build the request (raises `MotionError`/`RequestError` with a message for the user)."""
    from .. import bridge
    from ..bridge import edit as bridge_edit
    from ..inference.generation import edit
    from ..inference.generation.edit import EditError

    scene, settings = context.scene, context.scene.marionette
    s = obj.marionette_edit
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise EditError(f"'{obj.name}' has no action to edit: generate or key one first.")
    if action.library is not None:
        raise EditError(f"The action '{action.name}' is linked from another file; make it local to edit it.")
    edited, bones = edited_parts(obj, s)
    bad = bridge_edit.nan_channels(action, obj)
    if bad:
        raise EditError(f"The action '{action.name}' has keys that are not numbers (NaN) on {', '.join(bad[:3])}; "
                        "fix or delete those keys first.")
    first, last = bridge_edit.key_range(action, obj)
    span = (first, last) if s.use_whole_action else (s.frame_start, s.frame_end)
    a, b = edit.check_span(first, last, span)
    fps = bridge.scene_fps(scene)
    prefs = preferences.get(context)
    model_dir = prefs.model_dir if prefs else ""
    mfps = model_fps(model_dir)
    ctx = edit.CONTEXT_SECONDS * fps
    lo, hi = int(max(np.ceil(first), a - np.ceil(ctx))), int(min(np.floor(last), b + np.ceil(ctx)))
    if (b - a) / fps > MAX_SECONDS - 2 * edit.CONTEXT_SECONDS:
        raise EditError(f"The range {a}-{b} is {(b - a) / fps:.1f} s long; Marionette edits up to "
                        f"{MAX_SECONDS - 2 * edit.CONTEXT_SECONDS:g} s at a time. Edit it in parts.")
    source = bridge.read_clip(obj, action, lo, hi - lo + 1, fps, scale_root=settings.scale_root)
    p = edit.plan(source, lo, (a, b), edited, mfps, max_seconds=MAX_SECONDS, carry_rest=s.carry_rest)
    request = GenerationRequest(
        prompt=s.prompt.strip(), seconds=p.constraints.num_frames / mfps, scene_fps=fps,
        seeds=tuple(s.seed + i for i in range(s.variations)), steps=settings.steps, guidance=settings.guidance,
        device=prefs.device if prefs else "AUTO", model_dir=model_dir, constraints=p.constraints,
        post=PostProcess(foot_lock=None if settings.foot_lock else False))
    object_travel = any(fc.data_path == "location" for fc in bridge.action_fcurves(action, obj))
    return EditJob(request, obj.name, action.name, p, edited, bones, s.output,
                   {"scale_root": settings.scale_root, "foot_lock": settings.foot_lock,
                    "root_motion": "OBJECT" if object_travel else "HIP"})


def validate(context, obj) -> str | None:
    if obj is None or obj.type != "ARMATURE":
        return "Select the armature whose action to edit."
    if context.mode not in {"OBJECT", "POSE"}:
        return "Switch to Object or Pose Mode to edit parts."
    if obj.marionette_edit.output == "IN_PLACE" and obj.marionette_edit.variations > 1:
        return "In place writes one take; set Variations to 1, or write new Actions."
    msg = missing_message(RUNTIME)
    if msg:
        return msg
    if running_job() is not None:
        return "An edit is already running."
    return None


def poll_job(job: EditJob, context) -> str:
    """One poll step: 'RUNNING', 'FINISHED', 'CANCELLED' or 'ERROR'. Writes the keys when done."""
    state = context.window_manager.marionette_job
    seen = jobs.poll(job)
    if seen.status == jobs.RUNNING:
        state.running = True
        state.progress = seen.progress
        state.status = f"Editing parts: step {seen.step} of {seen.total} (Esc cancels)"
        return seen.status
    state.running = False
    state.progress = 1.0 if seen.status == jobs.FINISHED else 0.0
    if seen.status == jobs.CANCELLED:
        state.status = "Edit cancelled"
    elif seen.status == jobs.ERROR:
        state.status = f"Edit failed: {seen.error}"
    else:
        write_results(job, context)
    return seen.status


def edit_record(job: EditJob, take: int) -> str:
    """What was edited, so the edit can be repeated: parts (or bones), joints, range, prompt, seed, source."""
    e = job.edited
    return json.dumps({"parts": list(e.parts), "bones": list(job.bones), "joints": list(e.joints), "root": e.root,
                       "frame_range": [int(job.plan.span[0]), int(job.plan.span[1])], "prompt": job.request.prompt,
                       "seed": int(job.result.takes[take].seed), "source_action": job.action}, sort_keys=True)


def write_results(job: EditJob, context) -> list:
    """Splice each take into a copy of the action (or the action itself), main thread only."""
    from .. import bridge
    from ..bridge import edit as bridge_edit
    from ..inference.generation import edit

    obj = bpy.data.objects.get(job.target)
    original = bpy.data.actions.get(job.action)
    if obj is None or original is None:
        raise RuntimeError(f"The armature '{job.target}' or its action '{job.action}' is gone.")
    fake = original.use_fake_user
    fps = bridge.scene_fps(context.scene)
    a, b = (int(x) for x in job.plan.span)
    channels = bridge_edit.RigChannels(obj)
    takes = list(job.result.takes)
    out: list = []
    moved: list = []
    try:
        for i, take in enumerate(takes):
            clip = edit.to_scene(take.clip, job.plan, np.arange(a, b + 1), fps)
            dense = bridge.write_clip(obj, clip, "marionette edit (temporary)", a, fps=None,
                                      scale_root=job.settings["scale_root"], root_motion=job.settings["root_motion"],
                                      foot_lock=job.settings["foot_lock"],
                                      level_feet=False)  # around the animator's keys: this rig's flat foot
            try:
                if job.output == "IN_PLACE":
                    target = original
                else:
                    target = original.copy()
                    target.name = f"{original.name} edit" + (f" v{i + 1}" if len(takes) > 1 else "")
                    out.append(target)
                bridge_edit.merge_edit(obj, original, dense, target, (a, b), channels, set(job.edited.joints),
                                       job.edited.root)
                carry = edit.carried(take.clip, job.plan)
                if carry.moves:
                    # the frames after the range continue from where the new root path arrives
                    bridge_edit.carry_rest(obj, original, target, b, carry, fps, channels, set(job.edited.joints),
                                           scale_root=job.settings["scale_root"],
                                           root_motion=job.settings["root_motion"])
                    moved.append(float(np.hypot(*carry.shift)))
                target["marionette_edit"] = edit_record(job, i)
                target["marionette_request"] = job.result.record(i)
            finally:
                bpy.data.actions.remove(dense)
            if job.output == "IN_PLACE":
                out.append(target)
    except Exception:
        obj.animation_data.action = original  # nothing half-written stays
        bridge.assign_action_slot(obj, original)
        original.use_fake_user = fake
        for act in out:
            if act != original:
                bpy.data.actions.remove(act)
        raise
    if job.output == "IN_PLACE":
        original.use_fake_user = fake
    else:
        original.use_fake_user = True  # the action as it was stays in the file
        for act in out:
            act.use_fake_user = True
        obj.marionette_variations.clear()
        for act, take in zip(out, takes):
            item = obj.marionette_variations.add()
            item.action, item.seed, item.prompt = act, take.seed, job.request.prompt
        obj.marionette_variation_index = 0
    obj.animation_data.action = out[0]
    bridge.assign_action_slot(obj, out[0])
    state = context.window_manager.marionette_job
    state.read_as = getattr(takes[0], "read_as", "") if takes else ""
    state.status = f"Edited {len(job.edited.joints)} joint(s) on frames {a}-{b}: {len(out)} take(s) in {job.elapsed:.1f} s"
    if moved:
        state.status += f"; the frames after {b} moved along with the new path ({max(moved):.2f} m)"
    return out


class MARIONETTE_OT_edit_parts(JobOperator, bpy.types.Operator):
    """Regenerate the chosen body parts in the frame range from the prompt; every other channel keeps its keys"""

    bl_idname = "marionette.edit_parts"
    bl_label = "Edit Parts"
    bl_options = {"REGISTER", "UNDO"}

    cancelled_message = "Edit cancelled; nothing was changed."

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None and running_job() is None

    def check(self, context) -> str | None:
        return validate(context, context.active_object)

    def make_job(self, context) -> EditJob:
        return make_job(context, context.active_object)

    def poll_job(self, job, context) -> str:
        return poll_job(job, context)


class MARIONETTE_OT_edit_range_from_keys(bpy.types.Operator):
    """Set the Edit Parts range to the keys selected in the Dope Sheet or Graph Editor"""

    bl_idname = "marionette.edit_range_from_keys"
    bl_label = "From Selected Keys"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None

    def execute(self, context):
        from ..bridge import edit as bridge_edit

        r = bridge_edit.selected_key_range(context.active_object)
        if r is None:
            self.report({"ERROR"}, "Select keys in the Dope Sheet or Graph Editor first (on the active armature's action).")
            return {"CANCELLED"}
        s = context.active_object.marionette_edit
        s.use_whole_action = False
        s.frame_start, s.frame_end = r
        return {"FINISHED"}


classes = (MARIONETTE_PG_edit_parts, MARIONETTE_OT_edit_parts, MARIONETTE_OT_edit_range_from_keys)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Object.marionette_edit = bpy.props.PointerProperty(type=MARIONETTE_PG_edit_parts)


def unregister():
    del bpy.types.Object.marionette_edit
    _unregister()
