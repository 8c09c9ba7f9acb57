"""Text to motion through the Generate operator, with the shipped model, in the bpy module."""
import importlib
import json
import threading

import numpy as np
import pytest

import bpy

from .test_extension import _draw_panels


@pytest.fixture
def gen_mod(ext):
    import torch

    torch.set_num_threads(1)
    return importlib.import_module(ext.__name__ + ".operators.generate")


def _settings(scene, **kw):
    s = scene.marionette
    s.prompt, s.seconds, s.seed, s.variations, s.steps, s.guidance = "a person walks forward", 2.0, 0, 1, 4, 2.5
    s.use_current_frame = True
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _keys(action, obj):
    from scripts.blender_env import PACKAGE

    bridge = importlib.import_module(PACKAGE + ".bridge")
    out = {}
    for fc in bridge.action_fcurves(action, obj):
        v = np.zeros(len(fc.keyframe_points) * 2)
        fc.keyframe_points.foreach_get("co", v)
        out[(fc.data_path, fc.array_index)] = v.reshape(-1, 2)
    return out


@pytest.mark.parametrize("kind,pelvis", [("RIGIFY", "spine"), ("CANONICAL", "pelvis")])
def test_generate_keys_a_new_action_of_the_asked_length(ext, scene, gen_mod, kind, pelvis):
    scene.render.fps = 24
    scene.frame_current = 10
    bpy.ops.marionette.add_character(character_type=kind)
    obj = bpy.context.view_layer.objects.active
    _settings(scene, prompt="a person walks forward", seconds=2.0)
    n_before = len(bpy.data.actions)
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    assert len(bpy.data.actions) == n_before + 1
    action = obj.animation_data.action
    assert action.name == "walks forward"
    first, last = action.frame_range
    assert first == 10 and abs((last - first + 1) - 48) <= 1, "2 s at 24 fps from the current frame"
    assert (scene.frame_start, scene.frame_end) == (10, int(last))
    # the character is upright: the head stays well above the pelvis on every frame
    head = "spine.006" if kind == "RIGIFY" else "head"
    for f in (10, 30, int(last)):
        scene.frame_set(f)
        assert obj.pose.bones[head].head[2] - obj.pose.bones[pelvis].head[2] > 0.3
    assert len(obj.marionette_variations) == 1 and obj.marionette_variations[0].action == action


def test_previous_action_is_kept_untouched(ext, scene, gen_mod, bandai_bvh):
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    bpy.ops.marionette.import_motion(filepath=str(bandai_bvh))
    old = obj.animation_data.action
    before = _keys(old, obj)
    _settings(scene)
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    assert obj.animation_data.action != old
    assert old.name in bpy.data.actions and old.use_fake_user
    after = _keys(old, obj)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_variations_are_distinct_and_each_reproducible_by_seed(ext, scene, gen_mod):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    _settings(scene, variations=3, seed=5, prompt="a person waves with the right hand")
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    takes = [it.action for it in obj.marionette_variations]
    assert [it.seed for it in obj.marionette_variations] == [5, 6, 7]
    assert obj.animation_data.action == takes[0], "the first take is shown"
    assert len({a.name for a in takes}) == 3 and all(a.use_fake_user for a in takes)
    keys = [_keys(a, obj) for a in takes]
    path = ('pose.bones["right_elbow"].rotation_quaternion', 1)
    assert not np.allclose(keys[0][path], keys[1][path]) and not np.allclose(keys[1][path], keys[2][path])
    # flipping between takes changes the character's action
    obj.marionette_variation_index = 2
    assert obj.animation_data.action == takes[2]
    # seed 6 on its own gives take 2 again
    _settings(scene, variations=1, seed=6, prompt="a person waves with the right hand")
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    again = _keys(obj.animation_data.action, obj)
    assert all(np.allclose(again[k], keys[1][k], atol=1e-5) for k in keys[1])
    # keep one take: the others are deleted
    obj.marionette_variations.clear()
    for a, seed in zip(takes, (5, 6, 7)):
        it = obj.marionette_variations.add()
        it.action, it.seed = a, seed
    obj.marionette_variation_index = 1
    names = [a.name for a in takes]
    assert bpy.ops.marionette.keep_variation() == {"FINISHED"}
    assert names[1] in bpy.data.actions and names[0] not in bpy.data.actions and names[2] not in bpy.data.actions


def _datablocks():
    return {attr: sorted(b.name for b in getattr(bpy.data, attr)) for attr in ("actions", "objects", "armatures")}


def test_cancel_during_sampling_leaves_no_new_datablocks(ext, scene, gen_mod):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    settings = _settings(scene, variations=2, steps=8)
    before = _datablocks()
    job = gen_mod.make_job(bpy.context, settings, obj)
    steps_seen = []
    real = job.on_progress

    def on_progress(p):
        steps_seen.append(p.step)
        if p.step == 3:
            job.cancel()
        return real(p)

    job.on_progress = on_progress
    job.start().thread.join(timeout=60)
    assert gen_mod.poll_job(job, bpy.context) == "CANCELLED"
    assert steps_seen == [1, 2, 3], "stopped at the step where cancel was pressed"
    assert _datablocks() == before
    assert obj.animation_data is None or obj.animation_data.action is None
    assert not bpy.context.window_manager.marionette_job.running


def test_poll_step_reports_progress_then_finishes(ext, scene, gen_mod):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    settings = _settings(scene, steps=5)
    job = gen_mod.make_job(bpy.context, settings, obj)
    gate, reached = threading.Semaphore(0), threading.Semaphore(0)
    real = job.on_progress

    def on_progress(p):
        out = real(p)
        reached.release()
        gate.acquire()
        return out

    job.on_progress = on_progress
    job.start()
    state = bpy.context.window_manager.marionette_job
    seen = []
    for _ in range(5):
        assert reached.acquire(timeout=60)
        assert gen_mod.poll_job(job, bpy.context) == "RUNNING"
        seen.append((job.step, round(state.progress, 3)))
        assert state.running and f"step {job.step} of 5" in state.status
        gate.release()
    job.thread.join(timeout=60)
    assert seen == [(k, round(k / 5, 3)) for k in range(1, 6)]
    assert gen_mod.poll_job(job, bpy.context) == "FINISHED"
    assert not state.running and obj.animation_data.action is not None
    drawn, errors = _draw_panels()
    assert "MARIONETTE_PT_generate" in drawn and not errors


def test_unfamiliar_prompt_names_what_the_model_knows(ext, scene, gen_mod):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    _settings(scene, prompt="zxqv blorp", seconds=1.0)
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    hint = bpy.context.window_manager.marionette_job.hint
    assert "far from what the model learned" in hint and "Closest" in hint
    _settings(scene, prompt="a person waves with the left hand", seconds=1.0)
    bpy.ops.marionette.generate()
    assert bpy.context.window_manager.marionette_job.hint == ""


def test_the_panel_says_what_the_prompt_was_read_as_and_can_take_it_as_written(ext, scene, gen_mod):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    state = bpy.context.window_manager.marionette_job
    _settings(scene, prompt="someone retreats, stepping backwards", seconds=1.0)
    assert scene.marionette.read_prompt, "on by default"
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    record = json.loads(obj.animation_data.action["marionette_request"])
    assert state.read_as and record["read_as"] == state.read_as and record["read_prompt"] is True
    drawn, errors = _draw_panels()
    assert "MARIONETTE_PT_generate" in drawn and not errors
    scene.marionette.read_prompt = False
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    record = json.loads(obj.animation_data.action["marionette_request"])
    assert state.read_as == "" and record["read_as"] == "" and record["read_prompt"] is False


def test_a_walk_back_prompt_walks_the_rig_backwards(ext, scene, gen_mod):
    # read as a forward walk played in reverse (the model glided backwards with sliding feet)
    scene.render.fps = 24
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    # (earlier tests leave other settings on the scene's property group)
    _settings(scene, prompt="a person walks backwards", seconds=3.0, steps=10, guidance=4.0, read_prompt=True,
              root_motion="HIP")
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    assert bpy.context.window_manager.marionette_job.read_as.endswith("(played backwards)")
    first, last = (int(f) for f in obj.animation_data.action.frame_range)
    scene.frame_set(first)
    start = obj.matrix_world @ obj.pose.bones["spine"].head
    scene.frame_set(last)
    end = obj.matrix_world @ obj.pose.bones["spine"].head
    # the metarig faces -Y: walking backwards moves it towards +Y, in a straight-ish line
    assert end.y - start.y > 1.0 and abs(end.x - start.x) < 0.5 * (end.y - start.y), (start, end)


def test_bad_input_gets_a_clear_message_and_changes_nothing(ext, scene, gen_mod, tmp_path, monkeypatch):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    before = _datablocks()
    cases = [
        (dict(prompt="   "), "Type a prompt"),
        (dict(seconds=0.0), "Duration"),
        (dict(seconds=-2.0), "Duration"),
    ]
    for kw, words in cases:
        settings = _settings(scene)
        # the property clamps what the UI can enter; the operator must still refuse what scripts set
        for k, v in kw.items():
            settings[k] = v
        with pytest.raises(RuntimeError, match=words):
            bpy.ops.marionette.generate()
        assert _datablocks() == before
    settings = _settings(scene)
    settings["seconds"] = 60.0
    with pytest.raises(RuntimeError, match="at most 20"):
        bpy.ops.marionette.generate()
    # missing weights
    prefs = bpy.context.preferences.addons[ext.__name__].preferences
    prefs.model_dir = str(tmp_path)
    try:
        _settings(scene)
        with pytest.raises(RuntimeError, match="No motion model"):
            bpy.ops.marionette.generate()
    finally:
        prefs.model_dir = ""
    # torch missing
    deps = importlib.import_module(ext.__name__ + ".inference.deps")
    real = deps.missing
    monkeypatch.setattr(deps, "missing", lambda modules=None: [d for d in deps.DEPENDENCIES if d.module == "torch"])
    with pytest.raises(RuntimeError, match="torch|PyTorch"):
        bpy.ops.marionette.generate()
    monkeypatch.setattr(deps, "missing", real)
    assert _datablocks() == before
    # a mesh is active: no armature to animate (scripts do not get the "create one" dialog)
    bpy.ops.mesh.primitive_cube_add()
    before = _datablocks()
    with pytest.raises(RuntimeError, match="Select an armature"):
        bpy.ops.marionette.generate()
    assert _datablocks() == before
    # ...unless they ask for a character; a run that cannot go ahead takes the new character away again
    scene.marionette["prompt"] = ""
    with pytest.raises(RuntimeError, match="Type a prompt"):
        bpy.ops.marionette.generate(create_character=True)
    assert _datablocks() == before
    _settings(scene)
    assert bpy.ops.marionette.generate(create_character=True) == {"FINISHED"}
    new = bpy.context.view_layer.objects.active
    assert new.type == "ARMATURE" and new.animation_data.action is not None


@pytest.mark.parametrize("rig", ["quaternius_human_male.glb", "kenney_human_zombie.glb"])
def test_generate_onto_a_cc0_character(ext, scene, gen_mod, rig):
    import addon_utils

    from training.data import shared_data_dir

    path = shared_data_dir().parent / "rigs" / rig
    if not path.is_file():
        pytest.skip("../shared/rigs is not on this machine")
    addon_utils.enable("io_scene_gltf2", default_set=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    obj = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    bpy.context.view_layer.objects.active = obj
    _settings(scene, seconds=2.0, prompt="a person walks forward")
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    action = obj.animation_data.action
    first, last = action.frame_range
    assert abs((last - first + 1) - 60) <= 1
    mw = obj.matrix_world
    for f in (int(first), int(last)):
        scene.frame_set(f)
        head, pelvis = mw @ obj.pose.bones["head"].head, mw @ obj.pose.bones["pelvis"].head
        foot = mw @ obj.pose.bones["foot_l"].head
        assert head.z - pelvis.z > 0.4 and pelvis.z - foot.z > 0.5, "upright on this rig too"


def _planted_slide(obj, scene, bone, first, planted):
    """Median ground travel (m per frame) of a bone, read from the keyed rig, over consecutive planted frames."""
    mw = obj.matrix_world
    pts = []
    for f in range(len(planted)):
        scene.frame_set(first + f)
        pts.append(np.array((mw @ obj.pose.bones[bone].head)[:2]))
    steps = np.linalg.norm(np.diff(np.array(pts), axis=0), axis=1)
    both = planted[1:] & planted[:-1]
    assert both.sum() > 10, "a 4-s walk plants each foot"
    return float(np.median(steps[both]))


def test_keep_feet_planted_off_leaves_planted_feet_unlocked(ext, scene, gen_mod):
    """Unticked, neither the rig's foot lock nor the runtime's runs: planted feet move as the model made them."""
    scene.render.fps = 20  # the model's own rate: one key per model frame
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    slides = {}
    for lock in (True, False):
        settings = _settings(scene, prompt="a person walks forward", seconds=4.0, seed=0, steps=10, foot_lock=lock,
                             root_motion="HIP")
        job = gen_mod.make_job(bpy.context, settings, obj)
        assert job.request.post.foot_lock is (None if lock else False)
        job.start().thread.join(timeout=120)
        assert gen_mod.poll_job(job, bpy.context) == "FINISHED"
        assert job.result.foot_lock is lock
        take = job.result.takes[0]
        first = int(obj.animation_data.action.frame_range[0])
        slides[lock] = max(_planted_slide(obj, scene, bone, first, take.contacts[:, col] > 0.5)
                           for bone, col in (("left_ankle", 0), ("right_ankle", 2)))
    assert slides[True] < 0.0015, f"locked: planted ankles hold still ({slides[True]:.4f} m per frame)"
    assert slides[False] > 0.003, f"unlocked: planted ankles are left as the model made them ({slides[False]:.4f})"


def test_each_take_records_its_request_and_regenerates_from_it(ext, scene, gen_mod):
    import json

    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    _settings(scene, prompt="a person waves with the right hand", seconds=1.5, seed=11, variations=2, steps=4,
              guidance=3.0, foot_lock=False)
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    takes = [it.action for it in obj.marionette_variations]
    recs = [json.loads(a["marionette_request"]) for a in takes]
    assert [r["seed"] for r in recs] == [11, 12]
    r = recs[1]
    assert (r["prompt"], r["seconds"], r["steps"], r["guidance"], r["foot_lock"], r["styles"]) == \
        ("a person waves with the right hand", 1.5, 4, 3.0, False, [])
    assert r["model"] == "marionette-base" or r["model"] and len(r["model_version"]) == 12
    # the record alone makes the same take again
    before = _keys(takes[1], obj)
    _settings(scene, prompt=r["prompt"], seconds=r["seconds"], seed=r["seed"], variations=1, steps=r["steps"],
              guidance=r["guidance"], foot_lock=r["foot_lock"])
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    again = _keys(obj.animation_data.action, obj)
    assert before.keys() == again.keys() and all(np.allclose(before[k], again[k], atol=1e-6) for k in before)


def test_one_job_at_a_time_across_every_operator(ext, scene):
    """While any operator's job runs (here an in-between), no other Marionette job can start: they
    share the status line and the rig."""
    common = importlib.import_module(ext.__name__ + ".operators.common")
    bpy.ops.marionette.add_character(character_type="RIGIFY")

    class Busy:
        done = threading.Event()

    assert bpy.ops.marionette.generate.poll() and bpy.ops.marionette.inbetween.poll()
    common.set_running_job(Busy())
    try:
        for op in (bpy.ops.marionette.generate, bpy.ops.marionette.inbetween, bpy.ops.marionette.edit_parts,
                   bpy.ops.marionette.learn_style, bpy.ops.marionette.restyle_action):
            assert not op.poll(), op
    finally:
        Busy.done.set()
    assert bpy.ops.marionette.generate.poll() and bpy.ops.marionette.inbetween.poll()
