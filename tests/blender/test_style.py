"""Styles in Blender: learn from actions, keep the preset across re-registering, apply, restyle, bad input."""
import importlib
import json

import numpy as np
import pytest

import bpy


@pytest.fixture
def style_mod(ext):
    import torch

    torch.set_num_threads(1)
    return importlib.import_module(ext.__name__ + ".operators.style")


def _rig_with_actions(ext, n=3, frames=100):
    bpy.context.scene.marionette_style.items.clear()
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    from scripts.blender_env import PACKAGE  # noqa: F401

    MotionClip = importlib.import_module(ext.__name__ + ".inference.body.motion").MotionClip
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.active_object
    actions = []
    for k in range(n):
        t = np.arange(frames) / 24.0
        rot = np.tile([1.0, 0, 0, 0], (frames, 22, 1))
        ang = 0.4 * np.sin(2 * np.pi * t + k)
        rot[:, 1] = np.stack([np.cos(ang / 2), np.sin(ang / 2), 0 * t, 0 * t], -1)
        root = np.stack([0 * t, -t, 0.92 + 0 * t], -1)
        a = bridge.write_clip(obj, MotionClip(rot, root, 24.0), f"sway {k}", 1, fps=24.0)
        a.marionette_learn = True
        actions.append(a)
    return obj, actions


def test_learn_apply_and_survive_reregistering(ext, scene, style_mod, package_name):
    import addon_utils
    from scripts.blender_env import load_extension

    obj, actions = _rig_with_actions(ext)
    folder = style_mod.user_dir(create=True)
    for f in folder.glob("swaytest*"):
        f.unlink()
    assert bpy.ops.marionette.learn_style(name="swaytest", steps=5) == {"FINISHED"}
    assert sorted(f.name for f in folder.glob("swaytest*")) == ["swaytest.json", "swaytest.safetensors"]
    card = json.loads((folder / "swaytest.json").read_text())
    assert card["extra"]["detail"] is False and card["rank"] == 0  # the style in known words only
    for f in folder.glob("swaydetail*"):
        f.unlink()
    assert bpy.ops.marionette.learn_style(name="swaydetail", steps=5, detail=True) == {"FINISHED"}
    card = json.loads((folder / "swaydetail.json").read_text())
    assert card["extra"]["detail"] is True and card["rank"] > 0  # Learn Details: low-rank layers too
    for f in folder.glob("swaydetail*"):
        f.unlink()
    # the name is taken: refused, the preset untouched
    before = (folder / "swaytest.safetensors").read_bytes()
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.marionette.learn_style(name="swaytest", steps=5)
    assert (folder / "swaytest.safetensors").read_bytes() == before
    addon_utils.disable(package_name, default_set=True)
    load_extension()
    style_mod = importlib.import_module(ext.__name__ + ".operators.style")
    bpy.ops.marionette.refresh_styles()
    items = {it.name: it for it in bpy.context.scene.marionette_style.items}
    assert "swaytest" in items
    items["swaytest"].active, items["swaytest"].strength = True, 0.5
    styles = style_mod.active_styles(bpy.context)
    assert [(s.name, s.strength) for s in styles] == [("swaytest", 0.5)]
    for f in folder.glob("swaytest*"):
        f.unlink()


def test_bad_input_changes_nothing(ext, scene, style_mod):
    obj, actions = _rig_with_actions(ext, n=2)
    folder = style_mod.user_dir(create=True)
    files = sorted(folder.iterdir())
    with pytest.raises(RuntimeError, match="at least 3 clips"):
        bpy.ops.marionette.learn_style(name="few", steps=5)
    for a in bpy.data.actions:
        a.marionette_learn = False
    with pytest.raises(RuntimeError, match="No actions are ticked"):
        bpy.ops.marionette.learn_style(name="none", steps=5)
    with pytest.raises(RuntimeError, match="Turn on at least one style"):
        bpy.ops.marionette.restyle_action()
    assert sorted(folder.iterdir()) == files


def test_restyle_keeps_the_root_path(ext, scene, style_mod):
    obj, actions = _rig_with_actions(ext, n=1, frames=72)
    obj.animation_data.action = actions[0]
    bpy.ops.marionette.refresh_styles()
    items = bpy.context.scene.marionette_style.items
    if not len(items):
        pytest.skip("no shipped style presets")
    items[0].active = True
    n_actions = len(bpy.data.actions)
    assert bpy.ops.marionette.restyle_action() == {"FINISHED"}
    assert len(bpy.data.actions) == n_actions + 1
    new = obj.animation_data.action
    assert new is not actions[0] and new.frame_range[:] == actions[0].frame_range[:]


def test_the_demo_ticks_the_styles_it_is_given(ext, scene, style_mod):
    """`make demo STYLE=elderly:0.5`: the preset is ticked at that strength in the Style panel, so the
    Generate operator applies it; a name that is not a preset is an error, not a plain clip."""
    from scripts.demo import use_styles

    bpy.context.scene.marionette_style.items.clear()
    assert use_styles(bpy, bpy.context.scene, []) is None
    assert style_mod.active_styles(bpy.context) == ()
    assert use_styles(bpy, bpy.context.scene, ["elderly:0.5", "tired"]) is None
    got = {s.name: s.strength for s in style_mod.active_styles(bpy.context)}
    assert got == {"elderly": 0.5, "tired": 1.0}
    assert use_styles(bpy, bpy.context.scene, ["feminine"]) is None
    assert [s.name for s in style_mod.active_styles(bpy.context)] == ["feminine"], "the styles given, no others"
    assert "no style 'grumpy'" in use_styles(bpy, bpy.context.scene, ["grumpy"])
    assert "must be a number" in use_styles(bpy, bpy.context.scene, ["elderly:lots"])
