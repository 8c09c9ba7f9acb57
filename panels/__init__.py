"""The "Marionette" tab in the 3D viewport's sidebar."""
from . import main

_modules = (main,)


def register():
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
