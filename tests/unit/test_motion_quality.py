"""What a viewer of the shipped model's motion would notice, with thresholds taken from real motion:
tremor at the frame rate, and keys that the motion between them does not follow."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.evaluator import nyquist_share, velocity_jumps
from benchmarks.inbetween import interpolate
from inference.generation.generate import Generator
from training import data

FPS = 20.0


def real_take(name: str, frames: int | None = None, start: int = 0):
    """A Bandai-Namco take converted like the training data (canonical skeleton, 20 fps, grounded)."""
    from inference.body.bvh import read_bvh
    from inference.retargeting.retarget import bvh_to_canonical
    from training.build_dataset import ground

    path = data.bandai_file(name)
    if path is None:
        pytest.skip("Bandai-Namco data (../shared/data) is not on this machine")
    clip = ground(bvh_to_canonical(read_bvh(path)).downsample(FPS))
    frames = frames or clip.num_frames - start
    assert clip.num_frames >= start + frames, name
    return clip.slice(start, start + frames)


def training_walk() -> str:
    """A dataset-2 normal walk that the training split holds (never a test take)."""
    from training.build_dataset import split_for

    for k in range(1, 40):
        name = f"dataset-2_walk_normal_{k:03d}"
        if split_for(name) == "train" and data.bandai_file(name + ".bvh") is not None:
            return name + ".bvh"
    pytest.skip("no training-split walk take on this machine")


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Generator(None, "cpu")


def test_nyquist_share_sees_the_frame_rate_buzz():
    t = np.arange(80) / FPS
    slow = np.zeros((80, 22, 3))
    slow[..., 0] = 0.2 * np.sin(2 * np.pi * 0.7 * t)[:, None]
    buzz = slow + 0.01 * np.where(np.arange(80) % 2 == 0, 1.0, -1.0)[:, None, None]
    assert nyquist_share(slow, FPS) < 1e-3
    assert nyquist_share(buzz, FPS) > 0.3


def test_interpolation_keeps_keys_and_blends_between():
    clip = real_take("dataset-2_walk_normal_001.bvh", 41)
    lerp = interpolate(clip, [0, 20, 40])
    np.testing.assert_allclose(lerp.root_translation[[0, 20, 40]], clip.root_translation[[0, 20, 40]])
    np.testing.assert_allclose(lerp.root_translation[10], clip.root_translation[[0, 20]].mean(0), atol=1e-9)


def test_lafan_protocol_scores_a_20fps_interpolator_like_interpolation():
    """The 20-fps round trip around the 30-fps protocol (context resampled in, gap rounded to whole
    20-fps frames, result time-scaled back) neither helps nor hurts: a filler that interpolates
    between the same keys at 20 fps scores exactly like interpolation at 30 fps."""
    from benchmarks import inbetween as I

    class Lerp(I.Filler):
        def __init__(self):
            self.gen = type("Gen", (), {"fps": FPS})()

        def __call__(self, known, keys, seed):
            return I.interpolate(known, keys)

    clip = real_take("dataset-2_walk_normal_001.bvh")
    stats = I.position_stats([clip])
    out = I.run_lafan(Lerp(), I.lafan_windows([clip], 3), *stats)
    for gap in I.GAPS:
        assert out[f"inb_l2p_ratio_{gap}"] == pytest.approx(1.0, abs=1e-6)
        assert out[f"model_npss_{gap}"] == pytest.approx(out[f"interp_npss_{gap}"], rel=1e-6)
    assert 0 < out["interp_l2p_5"] < out["interp_l2p_15"] < out["interp_l2p_30"]


def test_in_betweening_figures_are_also_given_per_source():
    """Each source's windows get their own ratio (the test split's CMU dance takes apart from the
    Bandai-Namco ones), over exactly those windows: a filler perfect on one clip's window and
    interpolating on the other's scores 0 on the first label, 1 on the second, between on all."""
    from benchmarks import inbetween as I

    walk, wave = real_take("dataset-2_walk_normal_001.bvh"), real_take("dataset-2_wave-both-hands_normal_001.bvh")
    wins, labels = I.lafan_windows([walk, wave], 0, ["walk", "wave"])
    assert [w.num_frames for w in wins] == [w.num_frames for w in I.lafan_windows([walk, wave])]
    assert labels == ["walk"] * len(I.lafan_windows([walk])) + ["wave"] * len(I.lafan_windows([wave]))

    saved, I.BLOCK_SECONDS = I.BLOCK_SECONDS, 3.0
    try:
        blocks, block_labels = I.block_windows([walk, wave], 0, ["walk", "wave"])
    finally:
        I.BLOCK_SECONDS = saved

    class Half(I.Filler):
        def __init__(self):
            self.gen = type("Gen", (), {"fps": FPS})()

        def __call__(self, known, keys, seed):  # the bench passes each window's index as its seed
            return blocks[seed] if block_labels[seed] == "walk" else I.interpolate(known, keys)

    out = I.run_blocking(Half(), blocks, [walk, wave], block_labels)
    assert block_labels == ["walk", "wave"]
    assert out["inb_blocking_ratio_walk"] == pytest.approx(0.0, abs=1e-9)
    assert out["inb_blocking_ratio_wave"] == pytest.approx(1.0, abs=1e-9)
    assert out["inb_blocking_ratio_walk_windows"] == out["inb_blocking_ratio_wave_windows"] == 1
    assert 0.0 < out["inb_blocking_ratio"] < 1.0


def test_generated_motion_does_not_buzz_at_the_frame_rate(shipped):
    """The top frequency bin (a period of two frames) of generated joint velocities: the typical clip
    (median over prompts and seeds) holds no more than 3x the share that the most buzzing of three
    real takes of the same actions holds, and no clip more than 10x (the weights the issue measured
    put 58 % there; before the sampler dropped the alternation from its estimates, the right-hand
    wave of seed 0 held 2 %, 57x). The issue's target on the whole test split is
    `t2m_nyquist_share` in `make bench`."""
    real = [real_take(f"dataset-2_{c}_normal_001.bvh") for c in ("walk", "wave-right-hand", "raise-up-both-hands")]
    limit = 3 * max(nyquist_share(c.positions(), FPS) for c in real)
    shares = {}
    for prompt in ("a person walks forward", "a person waves with the right hand", "a person raises both hands"):
        for seed in (0, 1):
            clip = shipped.generate(prompt, num_frames=80, seed=seed).clip
            shares[(prompt, seed)] = nyquist_share(clip.positions(), FPS)
    typical = float(np.median(list(shares.values())))
    worst = max(shares, key=shares.get)
    assert typical <= limit, (f"median {typical:.4f} of the joint-velocity energy at the frame-rate limit (real takes "
                              f"at most {limit / 3:.5f}); all: {shares}")
    assert shares[worst] <= 10 * limit / 3, (f"{worst}: {shares[worst]:.4f} of the joint-velocity energy at the "
                                             f"frame-rate limit (real takes at most {limit / 3:.5f})")


def test_keyed_walk_follows_the_keyed_path(shipped):
    """Whole-pose keys every second on a real walk (6-s window, no prompt): the free frames stay as
    near the real motion as slerp/lerp between the same keys does (with a 25 % margin), and no key
    makes a joint's velocity jump more than the real take's own largest frame-to-frame change."""
    real = real_take(training_walk(), 120, start=20)
    keys = [0, 20, 40, 60, 80, 100, 119]
    from inference.generation.generate import keyframe_mask

    res = shipped.generate("", num_frames=120, seed=0, known=real, mask=keyframe_mask(120, keys)).clip
    free = np.setdiff1d(np.arange(120), keys)
    pr = real.positions()
    model_err = np.linalg.norm(res.positions() - pr, axis=-1)[free].mean()
    lerp_err = np.linalg.norm(interpolate(real, keys).positions() - pr, axis=-1)[free].mean()
    jumps = velocity_jumps(res.positions())[np.array(keys[1:-1]) - 1]
    real_max = velocity_jumps(pr).max()
    assert model_err <= 1.25 * lerp_err, (f"free frames {model_err:.3f} m from the real walk; slerp/lerp between "
                                          f"the same keys {lerp_err:.3f} m")
    assert jumps.max() <= real_max, (f"a joint's velocity jumps {jumps.max() * 100:.1f} cm/frame at a key; the real "
                                     f"take's largest change is {real_max * 100:.1f} cm/frame")


def test_a_key_on_the_first_frame_is_left_without_a_jerk(shipped):
    """Whole-pose keys every second from the first frame of a fast wave, guided as the In-between
    panel guides them (no prompt): nothing before the first key says how the motion arrives at it,
    and the model used to throw the hand on from it, 25 cm a frame over the next four frames
    (0.39-0.44 m/frame^2 for seeds 0-2; 0.08-0.12 now). After the first key a joint's velocity
    changes no more from frame to frame than the real take's own largest change (0.19)."""
    from inference.generation.constraints import Constraints

    real = real_take("dataset-2_wave-left-hand_active_007.bvh", 61)
    keys = [0, 20, 40, 60]
    c = Constraints.pose_keys(real, keys)
    res = shipped.generate("", num_frames=61, seed=0, known=real, mask=c.mask, key_guidance=c.key_guidance).clip
    start = velocity_jumps(res.positions())[:5].max()
    real_max = velocity_jumps(real.positions()).max()
    assert start <= real_max, (f"a joint's velocity changes {start * 100:.1f} cm/frame in the frames after the first "
                               f"key; the real take's largest change is {real_max * 100:.1f} cm/frame")
    assert np.allclose(res.rotations[keys], real.rotations[keys], atol=1e-6)


def test_a_keyed_backward_walk_is_filled_as_a_walk_not_a_glide(shipped):
    """Whole-pose keys every second on a real backward walk (training split, no prompt). The model
    walks forwards far better than backwards (from its 8 walk-back takes it glides), so keys that
    travel backwards are filled in reverse time; the free frames then stay clearly nearer the real
    walk than slerp/lerp between the same keys (filled forwards: 0.99 x slerp's error on this take)."""
    from inference.generation.generate import keyframe_mask, travels_backwards
    from training.build_dataset import split_for

    names = [f"dataset-1_walk-back_{s}_001" for s in ("active", "tired", "normal", "elderly", "feminine", "youthful")]
    names = [n for n in names if split_for(n) == "train" and data.bandai_file(n + ".bvh") is not None]
    if not names:
        pytest.skip("no training-split backward walk on this machine")
    real = real_take(names[0] + ".bvh", 120)
    keys = [0, 20, 40, 60, 80, 100, 119]
    mask = keyframe_mask(120, keys)
    assert travels_backwards(real, mask) and not travels_backwards(real.reversed(), mask[::-1])
    res = shipped.generate("", num_frames=120, seed=0, known=real, mask=mask).clip
    free = np.setdiff1d(np.arange(120), keys)
    pr = real.positions()
    model_err = np.linalg.norm(res.positions() - pr, axis=-1)[free].mean()
    lerp_err = np.linalg.norm(interpolate(real, keys).positions() - pr, axis=-1)[free].mean()
    assert model_err <= 0.85 * lerp_err, (f"free frames {model_err:.3f} m from the real backward walk; slerp/lerp "
                                          f"between the same keys {lerp_err:.3f} m")
    for k in keys:
        assert np.allclose(res.root_translation[k], real.root_translation[k], atol=1e-6), "keys stay on their frames"


def _turned_about(clip, start: int, degrees: float):
    """`clip` with frames from `start` on turned about the vertical through the root at `start`."""
    from inference.body import quat
    from inference.body.motion import MotionClip

    turn = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.radians(degrees))
    rot, root = clip.rotations.copy(), clip.root_translation.copy()
    rot[start:, 0] = quat.mul(np.broadcast_to(turn, rot[start:, 0].shape), rot[start:, 0])
    pivot = root[start].copy()
    root[start:] = pivot + quat.rotate(np.broadcast_to(turn, (len(root) - start, 4)), root[start:] - pivot)
    return MotionClip(rot, root, clip.fps)


@pytest.mark.parametrize("degrees", [170.0, -175.0])
def test_a_turn_around_keyed_a_second_apart_turns_without_a_flip(shipped, degrees):
    """A standing take keyed before and after the character turns about (nearly half a turn in one
    second, no prompt): the in-between turns the pelvis a little on every frame, never a lurch.
    (Before known rotations were spread as rotations, the salsa spins of the test split flipped the
    pelvis by 100 degrees in two frames halfway between their keys.)"""
    from inference.body import quat
    from inference.generation.generate import keyframe_mask

    real = real_take("dataset-2_wave-both-hands_normal_001.bvh", 60)
    keyed = _turned_about(real, 30, degrees)
    keys = [0, 1, 2, 10, 30, 31, 59]
    res = shipped.generate("", num_frames=60, seed=0, known=keyed, mask=keyframe_mask(60, keys)).clip
    np.testing.assert_allclose(res.rotations[keys, 0] * np.sign((res.rotations[keys, 0] * keyed.rotations[keys, 0]).sum(-1, keepdims=True)),
                               keyed.rotations[keys, 0], atol=1e-5)
    step = quat.quat_angle(res.rotations[1:, 0], res.rotations[:-1, 0])
    assert step[10:30].max() < 45, f"pelvis turns {step[10:30].max():.0f} degrees in one frame between the keys"
