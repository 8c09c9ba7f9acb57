"""Persistent settings (on the Scene) and transient job state (on the WindowManager)."""
from __future__ import annotations

import bpy

from .inference.generation import defaults
from .inference.generation.request import MAX_SECONDS

CHARACTER_TYPES = [
    ("CANONICAL", "Marionette Skeleton", "A simple 22-bone armature matching the motion model"),
    ("RIGIFY", "Rigify Human Metarig", "Rigify's human metarig (enables the Rigify add-on if needed)"),
]


class MARIONETTE_PG_inbetween(bpy.types.PropertyGroup):
    """In-between panel: which keys, what to fill between them, and where the result goes."""

    use_scene_range: bpy.props.BoolProperty(
        name="Scene Range", description="In-between the keys inside the preview range (or the scene's frame range)",
        default=True,
    )
    frame_start: bpy.props.IntProperty(name="Start", description="First frame whose keys are in-betweened", default=1)
    frame_end: bpy.props.IntProperty(name="End", description="Last frame whose keys are in-betweened", default=250)
    prompt: bpy.props.StringProperty(
        name="Prompt", description="Optional: what happens between the keys (\"walks tiredly\", \"jumps\")", default="",
    )
    seed: bpy.props.IntProperty(name="Seed", description="Same keys, same seed: same in-betweens", default=0, min=0)
    variations: bpy.props.IntProperty(
        name="Variations", description="How many different takes (each its own Action)", default=1, min=1, max=8,
    )
    output: bpy.props.EnumProperty(
        name="Output",
        items=[
            ("NEW_ACTION", "New Action", "Write a copy of the action with the in-betweens; the original is kept as it was"),
            ("IN_PLACE", "In Place", "Key only the in-between frames of the current action"),
        ],
        default="NEW_ACTION",
    )
    key_every: bpy.props.IntProperty(
        name="Key Every", description="1 keys every frame; N keys every Nth frame between your keys (your own "
        "keys are always kept)", default=1, min=1, soft_max=12, max=120,
    )


class MARIONETTE_PG_settings(bpy.types.PropertyGroup):
    inbetween: bpy.props.PointerProperty(type=MARIONETTE_PG_inbetween)
    scale_root: bpy.props.BoolProperty(
        name="Scale Root Motion",
        description="Scale root motion by the ratio of leg lengths, so strides fit the character",
        default=True,
    )
    character_type: bpy.props.EnumProperty(name="Character", items=CHARACTER_TYPES, default="CANONICAL")
    read_prompt: bpy.props.BoolProperty(
        name="Read Prompt",
        description="Give the model your prompt as the closest sentence it was trained on with the motion and "
                    "style your words name (shown after generating). Off: your words as written",
        default=True,
    )
    foot_lock: bpy.props.BoolProperty(
        name="Keep Feet Planted",
        description="Hold planted feet in place on your character (leg proportions differ from the motion's)",
        default=True,
    )
    root_motion: bpy.props.EnumProperty(
        name="Root Motion",
        description="Where the character's travel over the ground is keyed",
        items=[
            ("HIP", "On the Hips", "Key the travel on the hip bone (the object stays put)"),
            ("OBJECT", "On the Object", "Key the travel on the armature object; the hips keep height and sway"),
            ("IN_PLACE", "In Place", "Drop the travel: the character moves on the spot"),
        ],
        default="HIP",
    )

    # -- Generate panel
    prompt: bpy.props.StringProperty(
        name="Prompt", description="What the character should do, in plain words", default="a person walks forward"
    )
    seconds: bpy.props.FloatProperty(
        name="Duration", description="Length of the generated motion", default=4.0, min=0.5, soft_max=10.0,
        max=MAX_SECONDS, unit="TIME_ABSOLUTE", subtype="TIME_ABSOLUTE", step=50,
    )
    use_current_frame: bpy.props.BoolProperty(
        name="Start at Current Frame", description="Start the motion at the current frame", default=True
    )
    frame_start: bpy.props.IntProperty(name="Start Frame", description="First frame of the motion", default=1)
    seed: bpy.props.IntProperty(name="Seed", description="Same seed, same prompt: same motion", default=0, min=0)
    variations: bpy.props.IntProperty(
        name="Variations", description="How many different takes to generate (each its own Action)",
        default=1, min=1, max=8,
    )
    guidance: bpy.props.FloatProperty(
        name="Guidance", description="How strictly to follow the prompt (higher: closer to the words, less varied)",
        default=defaults.GUIDANCE, min=0.0, soft_max=6.0, max=15.0,
    )
    steps: bpy.props.IntProperty(
        name="Steps", description="Denoising steps: more is slower and can be smoother", default=defaults.STEPS, min=1, max=200,
    )


class MARIONETTE_PG_bone_row(bpy.types.PropertyGroup):
    """One row of an armature's bone map: which bone plays a canonical joint."""

    joint: bpy.props.StringProperty()
    bone: bpy.props.StringProperty(name="Bone", description="The armature bone that plays this body part")


class MARIONETTE_PG_variation(bpy.types.PropertyGroup):
    """One generated take, listed on the armature so the animator can flip between them."""

    action: bpy.props.PointerProperty(type=bpy.types.Action)
    seed: bpy.props.IntProperty()
    prompt: bpy.props.StringProperty()


def _show_variation(obj, context):
    items = obj.marionette_variations
    i = obj.marionette_variation_index
    if 0 <= i < len(items) and items[i].action is not None:
        if obj.animation_data is None:
            obj.animation_data_create()
        obj.animation_data.action = items[i].action
        from .bridge import assign_action_slot

        assign_action_slot(obj, items[i].action)


class MARIONETTE_PG_job(bpy.types.PropertyGroup):
    running: bpy.props.BoolProperty(default=False)
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: bpy.props.StringProperty(default="")
    hint: bpy.props.StringProperty(default="", description="Note about the last prompt (e.g. far from the training data)")
    read_as: bpy.props.StringProperty(default="", description="The training sentence the last prompt was read as")


classes = (MARIONETTE_PG_inbetween, MARIONETTE_PG_settings, MARIONETTE_PG_bone_row, MARIONETTE_PG_variation, MARIONETTE_PG_job)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Scene.marionette = bpy.props.PointerProperty(type=MARIONETTE_PG_settings)
    bpy.types.WindowManager.marionette_job = bpy.props.PointerProperty(type=MARIONETTE_PG_job)
    bpy.types.Object.marionette_variations = bpy.props.CollectionProperty(type=MARIONETTE_PG_variation)
    bpy.types.Object.marionette_bone_map = bpy.props.CollectionProperty(type=MARIONETTE_PG_bone_row)
    bpy.types.Object.marionette_bone_map_source = bpy.props.StringProperty(name="Bone Map")
    bpy.types.Object.marionette_rig_target = bpy.props.EnumProperty(
        name="Keys On",
        description="Where motion is keyed on a control rig (Rigify's generated rig)",
        items=[
            ("CONTROLS", "FK Controls", "Key the FK controls and switch arms and legs to FK: the rig stays fully editable"),
            ("DEFORM", "Deform Bones Too", "Also key the deform (DEF) bones with their evaluated pose, for exporting "
             "a deform-only skeleton; the controls still drive the rig"),
        ],
        default="CONTROLS",
    )
    bpy.types.Object.marionette_variation_index = bpy.props.IntProperty(
        name="Variation", description="The take shown on the character", default=0, update=_show_variation
    )


def unregister():
    del bpy.types.Object.marionette_variation_index
    del bpy.types.Object.marionette_rig_target
    del bpy.types.Object.marionette_bone_map_source
    del bpy.types.Object.marionette_bone_map
    del bpy.types.Object.marionette_variations
    del bpy.types.WindowManager.marionette_job
    del bpy.types.Scene.marionette
    _unregister()
