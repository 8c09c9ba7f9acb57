"""Seconds from pressing Generate to keys written, for a 4-second clip on Rigify's metarig (CPU, 2 threads).

    python -m benchmarks.blender_latency        # prints JSON

The add-on is loaded as a real extension in the bpy module. The first Generate loads the model and
the text encoder (reported separately as cold); the figure is the median of the warm runs after it.
"""
from __future__ import annotations

import json
import statistics
import sys
import time


def main() -> int:
    from scripts.blender_env import load_extension, reset_scene

    load_extension()
    import bpy
    import torch

    torch.set_num_threads(2)
    reset_scene()
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    s = bpy.context.scene.marionette
    s.prompt, s.seconds, s.variations = "a person walks forward and waves", 4.0, 1
    prefs = bpy.context.preferences.addons["bl_ext.marionette_dev.marionette"].preferences
    prefs.device = "CPU"
    t0 = time.perf_counter()
    assert bpy.ops.marionette.generate() == {"FINISHED"}
    cold = time.perf_counter() - t0
    times = []
    for seed in range(1, 6):
        s.seed = seed
        t0 = time.perf_counter()
        assert bpy.ops.marionette.generate() == {"FINISHED"}
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(times), "all": times, "cold_seconds": cold}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
