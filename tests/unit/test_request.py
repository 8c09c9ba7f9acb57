"""Typed requests: every invalid field gets a message that says what to change; results record the run."""
import json

import numpy as np
import pytest

from inference.generation.constraints import Constraints
from inference.body.motion import MotionClip
from inference.generation.request import GenerationRequest, PostProcess, RequestError, Style


@pytest.mark.parametrize("fields,words", [
    (dict(prompt="   "), "Type a prompt"),
    (dict(seconds=0.0), "Duration must be more than 0"),
    (dict(seconds=60.0), "at most 20 seconds"),
    (dict(scene_fps=0.0), "frame rate must be positive"),
    (dict(seeds=()), "1 to 8 variations"),
    (dict(seeds=tuple(range(9))), "1 to 8 variations"),
    (dict(seeds=(-1,)), "whole numbers of 0 or more"),
    (dict(steps=0), "Steps must be between 1 and 1000"),
    (dict(guidance=-1.0), "Guidance must be between 0 and 15"),
    (dict(device="TPU"), "Device must be one of AUTO, CPU, GPU"),
    (dict(styles=(Style("elderly"), Style("Elderly", 0.5))), "listed twice"),
    (dict(styles=("elderly",)), "Style\\(name, strength\\)"),
])
def test_each_invalid_field_has_a_message(fields, words):
    kw = dict(prompt="a person walks")
    kw.update(fields)
    with pytest.raises(RequestError, match=words):
        GenerationRequest(**kw)


def test_nested_options_are_validated_too():
    with pytest.raises(RequestError, match="strength must be between 0 and 1.5"):
        Style("elderly", 2.0)
    with pytest.raises(RequestError, match="needs the name"):
        Style(" ")
    with pytest.raises(RequestError, match="Smoothing must be between 0 and 10"):
        PostProcess(smoothing=-1.0)


def test_a_request_is_frozen_and_constraints_make_the_prompt_optional():
    r = GenerationRequest("a person walks", seeds=[3, 4])
    assert r.seeds == (3, 4)
    with pytest.raises(Exception):
        r.prompt = "x"
    clip = MotionClip(np.tile([1.0, 0, 0, 0], (20, 22, 1)), np.zeros((20, 3)), 20.0)
    r = GenerationRequest("", constraints=Constraints.pose_keys(clip, [0, 19]))
    rec = r.record()
    assert rec["constraints"] == {"frames": 20, "known_values": 2 * 135}
    json.dumps(rec)
