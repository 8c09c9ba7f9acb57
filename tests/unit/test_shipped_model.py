"""The shipped weights (assets/models/marionette-base) load and do what the prompt says, on CPU."""
import json

import numpy as np
import pytest
import torch

from inference.generation.generate import Generator, default_model_dir
from inference.body.skeleton import JOINT_NAMES

J = {n: i for i, n in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Generator(None, "cpu")


def test_shipped_folder_is_complete_and_small():
    folder = default_model_dir()
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md", "training.json", "vocabulary.json"):
        assert (folder / name).is_file(), name
    assert (folder / "model.safetensors").stat().st_size < 40 * 2**20
    card = (folder / "MODEL_CARD.md").read_text()
    for words in ("CC BY-NC 4.0", "mocap.cs.cmu.edu", "Bandai", "steps"):
        assert words in card
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] > 1000


def test_walk_prompt_walks_forward_upright(shipped):
    res = shipped.generate("a person walks forward", seconds=4.0, seed=0)
    pos = res.clip.positions()
    assert res.clip.num_frames == 80 and np.isfinite(pos).all()
    assert (pos[:, J["head"], 2] - pos[:, J["pelvis"], 2]).min() > 0.4
    travel = pos[-1, J["pelvis"], :2] - pos[0, J["pelvis"], :2]
    assert travel[1] < -1.5, f"walks towards -Y (the way it faces): moved {travel}"
    assert np.abs(pos[:, [J["left_foot"], J["right_foot"]], 2]).min() < 0.1, "feet reach the floor"


def test_raise_both_hands_lifts_the_hands_above_the_head(shipped):
    res = shipped.generate("a person raises both hands", seconds=3.0, seed=1)
    pos = res.clip.positions()
    for wrist in ("left_wrist", "right_wrist"):
        assert (pos[:, J[wrist], 2] - pos[:, J["head"], 2]).max() > 0.0, wrist
    assert np.linalg.norm(pos[-1, J["pelvis"], :2] - pos[0, J["pelvis"], :2]) < 1.0, "stays in place"


def test_left_and_right_are_not_confused(shipped):
    up = {}
    for side in ("left", "right"):
        pos = shipped.generate(f"a person raises the {side} hand", seconds=3.0, seed=2).clip.positions()
        up[side] = pos[:, J["left_wrist"], 2].max() - pos[:, J["right_wrist"], 2].max()
    assert up["left"] > 0.2 and up["right"] < -0.2
