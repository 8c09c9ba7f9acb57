"""The "Marionette" tab in the 3D viewport's sidebar."""
from . import inbetween, main, edit_parts, style

_modules = (main, inbetween, edit_parts, style)


def register():
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
