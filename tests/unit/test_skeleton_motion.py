"""Canonical skeleton, forward kinematics, MotionClip behaviour."""
import numpy as np
import pytest

from inference.body import quat
from inference.body.motion import MotionClip, MotionError
from inference.body.skeleton import BODY_PARTS, CANONICAL, JOINT_NAMES, MIRROR_INDEX, canonical_forward_kinematics_torch


def _pos(name, pos):
    return pos[JOINT_NAMES.index(name)]


def test_rest_pose_is_an_upright_t_pose_standing_on_the_ground():
    _, pos = CANONICAL.rest_pose()
    expected_wrist = CANONICAL.offsets[[0, 3, 6, 9, 13, 16, 18, 20]].sum(axis=0)
    assert np.allclose(_pos("left_wrist", pos), expected_wrist)
    assert 1.5 < _pos("head", pos)[2] < 1.7, "head height of an adult"
    assert 0.0 < _pos("left_foot", pos)[2] < 0.05, "toes just above the ground"
    assert _pos("left_wrist", pos)[0] > 0.6 and _pos("right_wrist", pos)[0] < -0.6, "left is +X, arms out"
    assert abs(_pos("left_wrist", pos)[2] - _pos("left_shoulder", pos)[2]) < 1e-9, "arms horizontal"
    assert _pos("left_foot", pos)[1] < _pos("left_ankle", pos)[1], "toes point forward (-Y)"
    # symmetric
    assert np.allclose(pos[MIRROR_INDEX] * [-1, 1, 1], pos)


def test_forward_kinematics_rotates_children_about_the_joint():
    rot = np.tile(quat.IDENTITY, (1, 22, 1))
    elbow = JOINT_NAMES.index("left_elbow")
    rot[0, elbow] = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.pi / 2)  # forearm swings to +Y
    _, pos = CANONICAL.forward_kinematics(rot)
    _, rest = CANONICAL.rest_pose()
    d = pos[0, JOINT_NAMES.index("left_wrist")] - pos[0, elbow]
    assert np.allclose(d, [0.0, 0.265, 0.0], atol=1e-9)
    assert np.allclose(pos[0, elbow], rest[elbow])


def test_torch_fk_matches_numpy_fk():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    rot = quat.normalize(rng.normal(size=(5, 22, 4)))
    root = rng.normal(size=(5, 3))
    _, pos = CANONICAL.forward_kinematics(rot, root_position=root)
    mats = torch.tensor(quat.to_matrix(rot))
    pos_t = canonical_forward_kinematics_torch(mats, torch.tensor(root))
    assert np.allclose(pos_t.numpy(), pos, atol=1e-9)


def _random_clip(n=40, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    rot = quat.normalize(np.tile(quat.IDENTITY, (n, 22, 1)) + 0.2 * rng.normal(size=(n, 22, 4)))
    root = np.cumsum(rng.normal(scale=0.01, size=(n, 3)), axis=0) + [0, 0, 0.9]
    return MotionClip(rot, root, fps)


def test_mirror_twice_is_identity_and_mirror_swaps_sides():
    clip = _random_clip()
    twice = clip.mirrored().mirrored()
    assert np.allclose(twice.rotations, clip.rotations)
    assert np.allclose(twice.root_translation, clip.root_translation)
    pos = clip.positions()
    mpos = clip.mirrored().positions()
    # the mirrored left wrist is where the right wrist was, reflected through x = 0
    assert np.allclose(mpos[:, JOINT_NAMES.index("left_wrist")], pos[:, JOINT_NAMES.index("right_wrist")] * [-1, 1, 1])


def test_resample_keeps_the_motion():
    clip = _random_clip(n=31, fps=30.0)
    up = clip.resample(60.0)
    assert up.num_frames == 61 and up.fps == 60.0
    assert np.allclose(quat.quat_angle(up.rotations[::2], clip.rotations), 0, atol=1e-5)
    back = up.resample(30.0)
    assert np.allclose(quat.quat_angle(back.rotations, clip.rotations), 0, atol=1e-5)
    assert np.allclose(back.root_translation, clip.root_translation)
    # a midpoint is the slerp halfway
    mid = quat.slerp(clip.rotations[3], clip.rotations[4], np.full(22, 0.5))
    assert np.allclose(quat.quat_angle(up.rotations[7], mid), 0, atol=1e-5)



def test_downsampled_wave_keeps_its_swing_without_a_tremor_at_the_new_rate():
    """A 2-Hz forearm wave taken at 30 fps, brought to 20 fps as the training data is: reading every
    new frame at a point (`resample`) leaves every other frame a halfway slerp, an alternation at 10 Hz;
    `downsample` treats every frame alike and keeps the swing."""
    from benchmarks.evaluator import nyquist_share

    n, fps = 150, 30.0
    t = np.arange(n) / fps
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    angle = 1.2 * np.sin(2 * np.pi * 2.0 * t)  # about the forearm's own up axis, +-69 degrees
    half = angle / 2
    rot[:, JOINT_NAMES.index("right_elbow")] = np.stack([np.cos(half), 0 * half, 0 * half, np.sin(half)], -1)
    root = np.tile(CANONICAL.offsets[0], (n, 1)) + np.stack([0.3 * t, 0 * t, 0 * t], -1)
    clip = MotionClip(rot, root, fps)
    point, even = clip.resample(20.0), clip.downsample(20.0)
    assert even.num_frames == point.num_frames == 100 and even.fps == 20.0
    wrist = JOINT_NAMES.index("right_wrist")
    p_point, p_even = point.positions(), even.positions()
    # the frame-rate share: real motion holds 0.02-0.05 % of its velocity energy there (FINDINGS)
    assert nyquist_share(p_point, 20.0) > 5 * nyquist_share(p_even, 20.0)
    assert nyquist_share(p_even, 20.0) < 5e-4
    def swing(p):  # the wrist's reach about the pelvis, the widest way it moves
        rel = p[:, wrist] - p[:, 0]
        return np.ptp(rel, axis=0).max()

    assert swing(p_point) > 0.3
    assert abs(swing(p_even) - swing(p_point)) < 0.03 * swing(p_point)
    # the root's path is the same straight line, frames at the same times
    assert np.allclose(even.root_translation[10:-10], point.root_translation[10:-10], atol=1e-9)
    # raising the rate is plain resampling
    assert np.allclose(clip.downsample(60.0).rotations, clip.resample(60.0).rotations)

@pytest.mark.parametrize(
    "rot_shape,root_shape,bad,msg",
    [
        ((0, 22, 4), (0, 3), None, "no frames"),
        ((5, 22, 4), (5, 3), "nan", "NaN"),
        ((5, 21, 4), (5, 3), None, "shape"),
        ((5, 22, 4), (4, 3), None, "Root translation"),
    ],
)
def test_bad_clips_are_refused_with_a_clear_message(rot_shape, root_shape, bad, msg):
    rot = np.zeros(rot_shape)
    rot[..., 0] = 1
    root = np.zeros(root_shape)
    if bad == "nan":
        root[2, 1] = np.nan
    with pytest.raises(MotionError, match=msg):
        MotionClip(rot, root, 30.0)


def test_body_parts_name_real_joints():
    for part in BODY_PARTS:
        assert all(j in JOINT_NAMES for j in part.joints), part.name
        assert part.joints or part.root_translation


def test_runtime_folders_import_only_downwards():
    """inference/body imports nothing from retargeting or generation; retargeting nothing from generation."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "inference"
    above = {"body": ("retargeting", "generation"), "retargeting": ("generation",), "generation": ()}
    for folder, forbidden in above.items():
        for path in (root / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    target = "." * node.level + (node.module or "")
                    assert not any(f in target.split(".") for f in forbidden), (path.name, target)


def test_model_rate_motion_shown_at_the_scene_rate_has_no_kink_at_each_model_frame():
    """20-fps motion written at 30 fps: slerp between the model's frames turns at each of them (a
    velocity jump 20 times a second); the smooth curve through them follows the motion."""
    def wave(fps, seconds=3.0):
        t = np.arange(int(seconds * fps) + 1) / fps
        half = 0.6 * np.sin(2 * np.pi * 1.5 * t)
        rot = np.tile(quat.IDENTITY, (len(t), 22, 1))
        rot[:, JOINT_NAMES.index("right_shoulder")] = np.stack([np.cos(half), 0 * t, np.sin(half), 0 * t], -1)
        root = np.tile(CANONICAL.offsets[0], (len(t), 1)) + np.stack([0.5 * np.sin(t), 0 * t, 0 * t], -1)
        return MotionClip(rot, root, fps)

    model, truth = wave(20.0), wave(30.0)
    smooth, linear = model.at_rate(30.0), model.resample(30.0)
    assert smooth.num_frames == truth.num_frames and smooth.fps == 30.0
    # every third 30-fps frame is a model frame, exactly
    assert np.array_equal(smooth.rotations[::3], model.rotations[::2][: len(smooth.rotations[::3])])
    wrist = JOINT_NAMES.index("right_wrist")
    p_true, p_smooth, p_lin = (c.positions()[:, wrist] for c in (truth, smooth, linear))
    err_smooth = np.linalg.norm(p_smooth - p_true, axis=-1).max()
    err_lin = np.linalg.norm(p_lin - p_true, axis=-1).max()
    assert err_smooth < 0.3 * err_lin
    acc = lambda p: np.linalg.norm(np.diff(p, 2, axis=0), axis=-1).max()  # noqa: E731
    assert acc(p_smooth) < 1.2 * acc(p_true) < acc(p_lin)
    # going down is `downsample`
    assert np.allclose(truth.at_rate(20.0).rotations, truth.downsample(20.0).rotations)
