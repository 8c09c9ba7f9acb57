"""Marionette: a local human-motion diffusion model in Blender's 3D viewport sidebar.

This file only registers; see README.md for the layout.
"""
from . import preferences, props, operators, panels

_modules = (preferences, props, operators, panels)


def register():
    preferences.add_dependency_path()
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
