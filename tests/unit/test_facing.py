"""A character faces where it goes when only its path is given (root-path keys, Restyle Action)."""
import numpy as np
import pytest
import torch

from inference.body import quat
from inference.body.bvh import read_bvh
from inference.generation.constraints import Constraints
from inference.generation.generate import Generator
from inference.generation.restyle import restyle
from inference.retargeting.retarget import bvh_to_canonical
from training import data


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Generator(None, "cpu")


@pytest.fixture(scope="module")
def walk():
    """A held-out (test-split) walk, 5 s, that travels 5 m along the world's +Y, away from the model's
    forward axis (-Y): the model frame must be turned to it."""
    path = data.bandai_file("dataset-2_walk_normal_008.bvh")
    if path is None:
        pytest.skip("Bandai-Namco data (../shared/data) is not on this machine")
    return bvh_to_canonical(read_bvh(path)).slice(0, 100).at_rate(20.0)


def _facing_along_travel(clip) -> float:
    """Mean cosine between where the pelvis faces and where the root travels (1: walks forward)."""
    orient, _ = clip.forward_kinematics()
    fwd = quat.rotate(orient[:, 0], np.array([0.0, -1.0, 0.0]))[:-1, :2]
    v = np.diff(clip.root_translation[:, :2], axis=0)
    return float(((fwd * v).sum(-1) / (np.linalg.norm(fwd, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-9)).mean())


def test_the_source_walk_faces_where_it_goes_and_not_along_the_models_forward_axis(walk):
    assert _facing_along_travel(walk) > 0.9
    travel = walk.root_translation[-1, :2] - walk.root_translation[0, :2]
    assert travel[1] > 3.0 * abs(travel[0])  # along +Y


def test_a_root_path_alone_is_walked_facing_forward(shipped, walk):
    cons = Constraints.root_path(walk)
    res = shipped.generate("a person walks forward", num_frames=walk.num_frames, seed=0, known=cons.known,
                           mask=cons.mask)
    assert np.allclose(res.clip.root_translation[:, :2], walk.root_translation[:, :2], atol=1e-6)
    assert _facing_along_travel(res.clip) > 0.8, "walked backwards along the path"


def test_restyle_keeps_the_actions_facing(shipped, walk):
    out = restyle(shipped, walk, (), seed=0, prompt="a person walks forward").clip
    assert _facing_along_travel(out) > 0.8, "the restyled action walks backwards"
