"""Operators. Each imports the runtime (numpy, scipy, torch) only when it runs, so the add-on
registers and tells the user what is missing even when those packages are not installed."""
from . import bone_map, character, generate, inbetween, motion_io, edit_parts, style

_modules = (character, bone_map, motion_io, generate, inbetween, edit_parts, style)


def register():
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
