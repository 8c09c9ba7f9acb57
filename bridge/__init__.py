"""The one place that converts between Blender data and numpy (everything here runs on the main
thread), split by concept:

- `armature`: armatures as skeletons, bone maps, rest alignment, the canonical armature;
- `actions`: F-curves over Blender's two action models (4.2-4.3 and 4.4+), keys as data;
- `control_rigs`: rigs driven by controls (Rigify's generated rig), the evaluated pose;
- `clips`: canonical clips onto armatures and back (root motion, planted feet);
- `inbetween`, `edit`: writing only some frames or some channels, the animator's keys kept.
"""
from __future__ import annotations

from .armature import CANONICAL_MAP, armature_alignment, armature_basis, armature_skeleton, create_canonical_armature, stored_bone_map  # noqa: F401
from .control_rigs import ControlLayer, RIG_TARGETS, _anchor_depth, _control_layers, _control_levels, _matrix_basis_to_arrays, _plain_anchor, _pose_matrices, _write_controls, control_layer, evaluated_pose, missing_controls  # noqa: F401
from .actions import ChannelKeys, _BONE_PATH, _ensure_fcurve, _key_rotation, _new_action, _set_keys, action_fcurves, assign_action_slot, key_range, read_action, read_keys, selected_key_range, write_action  # noqa: F401
from .clips import ROOT_MOTION, _root_carrier, read_clip, scene_fps, write_clip  # noqa: F401
from .inbetween import GENERATED, _ROTATIONS, _animator_keys, _animator_value, _own_keys, _quat_sign, _restore_handles, keyed_poses, locked_channels, merge_inbetweens  # noqa: F401
from . import edit  # noqa: F401
