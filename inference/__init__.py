"""Marionette runtime: Blender-free motion maths, model and sampler (numpy + PyTorch)."""
