"""The "Marionette" tab in the 3D viewport's sidebar."""
from . import inbetween, main, edit_parts

_modules = (main, inbetween, edit_parts)


def register():
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
