"""Helpers shared by operators: dependency checks and user-facing errors."""
from __future__ import annotations

import traceback

from ..inference import deps


def missing_message(modules: tuple[str, ...]) -> str | None:
    """A sentence for the user when any of these modules is missing, else None."""
    gone = deps.missing(modules)
    if not gone:
        return None
    names = ", ".join(d.package for d in gone)
    return f"Marionette needs {names}: install it from Edit > Preferences > Add-ons > Marionette."


def report_error(op, exc: Exception) -> set[str]:
    """Show a known error as it is; anything else as a short sentence, with the traceback in the console."""
    from ..inference.body.motion import MotionError

    if isinstance(exc, MotionError):
        op.report({"ERROR"}, str(exc))
    else:
        traceback.print_exc()
        op.report({"ERROR"}, f"Marionette failed unexpectedly ({type(exc).__name__}: {exc}); see the console.")
    return {"CANCELLED"}


def model_fps(model_dir: str) -> float:
    """The model's own frame rate, from its config.json (no torch needed)."""
    import json
    from pathlib import Path

    from ..inference.generation.generate import default_model_dir

    folder = Path(model_dir) if model_dir else default_model_dir()
    return float(json.loads((folder / "config.json").read_text()).get("fps", 20.0))


def active_armature(context):
    """The active object when it is an armature, else None."""
    obj = context.active_object
    return obj if obj is not None and obj.type == "ARMATURE" else None


# ------------------------------------------------------------------------------------------ jobs
_current = None
"""The one job running in this Blender session, whichever operator started it."""


def running_job():
    """The job still running (any operator's), else None: one at a time, since they share the status."""
    return _current if _current is not None and not _current.done.is_set() else None


def set_running_job(job) -> None:
    global _current
    _current = job


class JobOperator:
    """Mixin for an operator that runs one runtime job: in the background with the status in the
    status bar and Esc to cancel when invoked, to the end when executed (scripts, background mode).

    A subclass provides `check(context)` (why not, or None) and `make_job(context)`, or its own
    `start_job(context)` (the started job, or None after reporting why not), `poll_job(job, context)` (a plain function of the job: "RUNNING", "FINISHED", "CANCELLED" or
    "ERROR"; it writes the results on the main thread) and `cancelled_message`; `on_failed()` undoes
    anything the operator itself added before a cancelled or failed run."""

    _timer = None
    cancelled_message = "Cancelled; nothing was changed."
    report_hint = False
    """Also report the job's hint (e.g. a prompt far from the training data) as a warning."""

    def check(self, context) -> str | None:
        """A sentence saying why the job cannot start, or None."""
        return None

    def make_job(self, context):
        """The job for this run (may raise MotionError / RequestError with a message for the user)."""
        raise NotImplementedError

    def start_job(self, context):
        from ..inference.body.motion import MotionError
        from ..inference.generation.request import RequestError

        msg = self.check(context)
        if msg:
            self.report({"ERROR"}, msg)
            return None
        try:
            return self.make_job(context).start()
        except (MotionError, RequestError) as exc:
            report_error(self, exc)
            return None

    def invoke(self, context, event):
        return self.run_modal(context)

    def execute(self, context):
        return self.run_to_end(context)  # scripts and background mode

    def poll_job(self, job, context) -> str:
        raise NotImplementedError

    def on_failed(self) -> None:
        pass

    def _begin(self, context):
        job = self.start_job(context)
        if job is not None:
            set_running_job(job)
        return job

    def run_to_end(self, context):
        job = self._begin(context)
        if job is None:
            return {"CANCELLED"}
        job.thread.join()
        return self._result(self._poll(job, context), job)

    def run_modal(self, context):
        job = self._begin(context)
        if job is None:
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = running_job() or _current
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
            return {"RUNNING_MODAL"}  # Esc is ours while the job runs
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._poll(job, context)
        if context.workspace is not None:
            context.workspace.status_text_set(None if state != "RUNNING" else context.window_manager.marionette_job.status)
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if state == "RUNNING":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._result(state, job)

    def _poll(self, job, context) -> str:
        try:
            return self.poll_job(job, context)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            job.error = exc
            context.window_manager.marionette_job.running = False
            return "ERROR"

    def _result(self, state, job):
        import bpy

        wm_job = bpy.context.window_manager.marionette_job
        if state == "FINISHED":
            self.report({"INFO"}, wm_job.status)
            if self.report_hint and wm_job.hint:
                self.report({"WARNING"}, wm_job.hint)
            return {"FINISHED"}
        self.on_failed()  # a cancelled or failed run leaves the scene as it was
        if state == "CANCELLED":
            self.report({"INFO"}, self.cancelled_message)
        elif job.error is not None:
            report_error(self, job.error)
        return {"CANCELLED"}
