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
    from ..inference.motion import MotionError

    if isinstance(exc, MotionError):
        op.report({"ERROR"}, str(exc))
    else:
        traceback.print_exc()
        op.report({"ERROR"}, f"Marionette failed unexpectedly ({type(exc).__name__}: {exc}); see the console.")
    return {"CANCELLED"}


def active_armature(context):
    """The active object when it is an armature, else None."""
    obj = context.active_object
    return obj if obj is not None and obj.type == "ARMATURE" else None
