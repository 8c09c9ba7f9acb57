"""Add-on preferences: compute device, model folder, and the Python packages the runtime needs."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import bpy

from .inference import deps


def dependency_path() -> str | None:
    """The extension's own site-packages folder (kept across upgrades), or None outside an extension."""
    try:
        return bpy.utils.extension_path_user(__package__, path="site-packages", create=False)
    except (ValueError, AttributeError):
        return None


def add_dependency_path() -> None:
    path = dependency_path()
    if path and os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)


class _Install:
    """State of a running dependency install (a background pip process)."""

    thread: threading.Thread | None = None
    returncode: int | None = None
    log: str = ""


def _run_pip(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    _Install.log = (proc.stdout + proc.stderr)[-2000:]
    _Install.returncode = proc.returncode


def poll_install() -> str:
    """One step of the install's progress: 'running', 'done' or 'failed' (timers call this)."""
    if _Install.thread is not None and _Install.thread.is_alive():
        return "running"
    if _Install.returncode == 0:
        add_dependency_path()
        return "done"
    return "failed" if _Install.returncode is not None else "idle"


class MARIONETTE_OT_install_dependencies(bpy.types.Operator):
    """Download and install the Python packages Marionette needs (PyTorch is about 1 GB)"""

    bl_idname = "marionette.install_dependencies"
    bl_label = "Install Dependencies"

    @classmethod
    def poll(cls, context):
        return bool(deps.missing()) and dependency_path() is not None and poll_install() != "running"

    def execute(self, context):
        target = bpy.utils.extension_path_user(__package__, path="site-packages", create=True)
        args = deps.pip_command(deps.missing(), target)
        _Install.returncode = None
        _Install.thread = threading.Thread(target=_run_pip, args=(args,), daemon=True)
        _Install.thread.start()

        def tick():
            state = poll_install()
            if state == "running":
                return 1.0
            print(f"Marionette: dependency install {state}\n{_Install.log}")
            return None

        bpy.app.timers.register(tick, first_interval=1.0)
        self.report({"INFO"}, "Installing dependencies in the background; see the system console.")
        return {"FINISHED"}


class MARIONETTE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    device: bpy.props.EnumProperty(
        name="Device",
        description="Where the motion model runs",
        items=[
            ("AUTO", "Auto", "The GPU when PyTorch can use one, otherwise the CPU"),
            ("CPU", "CPU", "Always the CPU"),
            ("GPU", "GPU", "The GPU (CUDA or Apple Metal); falls back to the CPU with a warning"),
        ],
        default="AUTO",
    )
    model_dir: bpy.props.StringProperty(
        name="Model Folder",
        description="A folder with model.safetensors and config.json; empty uses the model shipped with Marionette",
        subtype="DIR_PATH",
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "device")
        layout.prop(self, "model_dir")
        draw_dependencies(layout)


def draw_dependencies(layout) -> None:
    missing = deps.missing()
    box = layout.box()
    if not missing:
        box.label(text="All Python dependencies are installed.", icon="CHECKMARK")
        return
    box.label(text="Missing Python packages:", icon="ERROR")
    for d in missing:
        box.label(text=f"{d.package} (needed for {d.purpose})")
    state = poll_install()
    if state == "running":
        box.label(text="Installing... see the system console.", icon="TIME")
    else:
        if state == "failed":
            box.label(text="The last install failed; see the system console.", icon="CANCEL")
        box.operator(MARIONETTE_OT_install_dependencies.bl_idname, icon="IMPORT")


def get(context) -> MARIONETTE_AP_preferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


classes = (MARIONETTE_OT_install_dependencies, MARIONETTE_AP_preferences)
register, unregister = bpy.utils.register_classes_factory(classes)
