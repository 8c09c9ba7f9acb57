"""The denoiser, the sampler and the generation entry point, on a tiny random-weight config."""
import json

import numpy as np
import pytest
import torch

from inference.generation import representation as rep
from inference.generation.diffusion import Cancelled
from inference.generation.generate import Generator, joint_mask, keyframe_mask, trajectory_mask
from inference.generation.model import Denoiser, LoRALinear, ModelConfig, ModelError
from inference.body.motion import MotionClip, MotionError
from inference.body.skeleton import JOINT_NAMES

TINY = ModelConfig(width=32, layers=2, heads=2, max_frames=64, window_frames=32, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    Denoiser(TINY).save(folder)
    return folder


@pytest.fixture(scope="module")
def gen(tiny_dir):
    return Generator(tiny_dir, "cpu")


def _text(seed=0):
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


def _walk(n=40, fps=20.0):
    """A clip placed away from the origin, turned 60 degrees, with knees and arms moving."""
    from inference.body import quat

    t = np.arange(n) / fps
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    yaw = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.radians(60))
    rot[:, 0] = quat.mul(np.broadcast_to(yaw, (n, 4)), quat.from_axis_angle(np.array([1.0, 0, 0]), 0.1 * np.sin(t * 6))[:, None][:, 0])
    for name, phase in (("left_knee", 0), ("right_knee", np.pi), ("left_shoulder", 1.0)):
        rot[:, JOINT_NAMES.index(name)] = quat.from_axis_angle(np.array([1.0, 0, 0]), 0.4 * np.sin(t * 6 + phase))[:, None][:, 0]
    root = np.stack([3.0 + 0.8 * t, -2.0 + 1.1 * t, 0.95 + 0.02 * np.sin(t * 12)], axis=1)
    return MotionClip(rot, root, fps)


@pytest.mark.parametrize("key_guidance", [1.0, 2.5])
@pytest.mark.parametrize("kind", ["keyframes", "joints", "trajectory", "joints+root"])
def test_masked_values_come_out_exactly(gen, kind, key_guidance):
    ref = _walk()
    n = ref.num_frames
    mask = {
        "keyframes": keyframe_mask(n, [0, 17, n - 1]),
        "joints": joint_mask(n, ["left_shoulder", "left_elbow", "left_wrist", "pelvis"]),
        "trajectory": trajectory_mask(n, frames=[0, 10, 39], height=True),
        "joints+root": joint_mask(n, ["left_knee", "right_knee"], root=True),
    }[kind]
    res = gen.generate(known=ref, mask=mask, seed=3, steps=4, text_embedding=_text(), key_guidance=key_guidance)
    out = res.clip
    assert out.num_frames == n
    if key_guidance != 1.0:  # guiding on the known values changes the free frames, never the known ones
        plain = gen.generate(known=ref, mask=mask, seed=3, steps=4, text_embedding=_text()).clip
        assert np.abs(plain.rotations - out.rotations).max() > 1e-4
    for j in range(22):
        rows = mask[:, rep.joint_feature_slices(j)].all(axis=1)
        if rows.any():
            assert np.abs(out.rotations[rows, j] - ref.rotations[rows, j]).max() < 1e-12, JOINT_NAMES[j]
    for k in range(3):
        rows = mask[:, k]
        if rows.any():
            assert np.abs(out.root_translation[rows, k] - ref.root_translation[rows, k]).max() < 1e-12
    # the rest is generated, not copied
    free = ~mask[:, rep.joint_feature_slices(JOINT_NAMES.index("right_elbow"))].all(axis=1)
    assert np.abs(out.rotations[free, JOINT_NAMES.index("right_elbow")] - ref.rotations[free, JOINT_NAMES.index("right_elbow")]).max() > 1e-3


def test_generation_lands_in_the_reference_frame(gen):
    """Keyed root positions far from the origin and a turned pelvis stay where the animator put them."""
    ref = _walk()
    res = gen.generate(known=ref, mask=keyframe_mask(ref.num_frames, [0]), seed=1, steps=3, text_embedding=_text())
    assert np.allclose(res.clip.root_translation[0], ref.root_translation[0])
    # frames next to a keyed frame are generated in the same place (the model frame was undone)
    assert np.linalg.norm(res.clip.root_translation[1, :2] - ref.root_translation[0, :2]) < 3.0


def test_same_seed_same_motion_other_seed_other_motion(gen):
    a = gen.generate(num_frames=30, seed=7, steps=4, text_embedding=_text())
    b = gen.generate(num_frames=30, seed=7, steps=4, text_embedding=_text())
    c = gen.generate(num_frames=30, seed=8, steps=4, text_embedding=_text())
    assert np.array_equal(a.clip.rotations, b.clip.rotations)
    assert np.array_equal(a.clip.root_translation, b.clip.root_translation)
    assert np.abs(a.clip.rotations - c.clip.rotations).max() > 1e-3
    assert a.clip.fps == TINY.fps and a.contacts.shape == (30, 4)


def test_cancel_stops_within_one_step(gen):
    calls = []
    forward = gen.model.forward

    def counting_forward(*args, **kw):
        calls.append("forward")
        return forward(*args, **kw)

    def callback(p):
        calls.append(("progress", p.step, p.total))
        return p.step >= 2

    gen.model.forward = counting_forward
    try:
        with pytest.raises(Cancelled):
            gen.generate(num_frames=20, seed=0, steps=10, text_embedding=_text(), callback=callback)
    finally:
        del gen.model.forward
    assert calls == ["forward", ("progress", 1, 10), "forward", ("progress", 2, 10)]


def test_step_count_is_honoured(gen):
    seen = []
    gen.generate(num_frames=20, steps=6, text_embedding=_text(), callback=lambda p: seen.append(p.step))
    assert seen == [1, 2, 3, 4, 5, 6]


def test_full_runs_use_the_default_step_spacing_and_runs_from_a_draft_even_steps(gen, monkeypatch):
    from inference.generation import defaults, generate as generate_module

    seen = []
    sample_ddim = generate_module.sample_ddim

    def recording(denoise, x, timesteps, *args, **kw):
        seen.append(list(timesteps))
        return sample_ddim(denoise, x, timesteps, *args, **kw)

    monkeypatch.setattr(generate_module, "sample_ddim", recording)
    gen.generate(num_frames=20, steps=10, text_embedding=_text())
    walk = _walk(20)
    mask = np.zeros((20, rep.NUM_FEATURES), bool)
    mask[0] = True
    gen.generate(num_frames=20, steps=10, text_embedding=_text(), known=walk, mask=mask, start=0.5)
    assert seen[0] == gen.diffusion.timesteps(10, defaults.STEP_POWER) != gen.diffusion.timesteps(10)
    assert seen[1] == [444, 333, 222, 111, 0]  # from the draft at half the schedule: evenly, as before


def test_bad_requests_are_explained(gen):
    with pytest.raises(MotionError, match="1 to 64 frames"):
        gen.generate(num_frames=TINY.max_frames + 1, text_embedding=_text())
    with pytest.raises(Exception, match="known motion"):
        gen.generate(num_frames=10, mask=np.zeros((10, rep.NUM_FEATURES), bool), text_embedding=_text())


def test_a_skip_model_passes_a_nearly_clean_input_through_and_loads_back(tmp_path):
    torch.manual_seed(1)
    small = dict(width=32, layers=1, heads=2, max_frames=64, window_frames=32, dropout=0.0)
    m = Denoiser(ModelConfig(**small, skip=1.0)).eval()
    x = torch.randn(1, 20, rep.NUM_FEATURES)
    z = torch.zeros_like(x)
    text = torch.tensor(_text())[None]
    with torch.no_grad():
        clean, noisy = m(x, torch.tensor([0]), text, z, z), m(x, torch.tensor([999]), text, z, z)
        plain = Denoiser(ModelConfig(**small))
        plain.load_state_dict(m.state_dict())
        network = plain.eval()(x, torch.tensor([999]), text, z, z)
    assert (clean - x).abs().max() < 0.05 < (noisy - x).abs().max()
    assert torch.allclose(noisy, network, atol=0.05)  # at pure noise the estimate is the network's own
    m.save(tmp_path)
    again = Denoiser.load(tmp_path)
    assert again.config.skip == 1.0
    with torch.no_grad():
        assert torch.allclose(again(x, torch.tensor([0]), text, z, z), clean, atol=0.01)


def test_corrupt_weights_give_a_clear_error(tiny_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_dir / "config.json").read_text())
    (bad / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes()[:500])
    with pytest.raises(ModelError, match="corrupt"):
        Denoiser.load(bad)


def test_mismatched_weights_give_a_clear_error(tiny_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg["width"] = 48
    (other / "config.json").write_text(json.dumps(cfg))
    (other / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="does not match"):
        Denoiser.load(other)
    with pytest.raises(ModelError, match="needs config.json"):
        Denoiser.load(tmp_path / "nothing")


def test_weights_round_trip_in_half_precision(tiny_dir):
    m = Denoiser.load(tiny_dir)
    x = torch.randn(1, 12, rep.NUM_FEATURES)
    out = m(x, torch.tensor([10]), torch.zeros(1, 384), x, torch.zeros_like(x))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (tiny_dir / "model.safetensors").stat().st_size < Denoiser(TINY).state_dict()["output.weight"].numel() * 4 * 40


def test_lora_layers_start_as_the_base_model_and_train_alone():
    from inference.generation import lora

    torch.manual_seed(0)
    m = Denoiser(TINY).eval()
    x = torch.randn(2, 10, rep.NUM_FEATURES)
    args = (x, torch.tensor([5, 500]), torch.randn(2, 384), x, torch.zeros_like(x))
    before = m(*args)
    layers = m.lora_layers()
    assert len(layers) == 4 * TINY.layers and all(isinstance(l, LoRALinear) for _, l in layers)
    for p in m.parameters():
        p.requires_grad_(False)
    adapter = lora.create(m, "s", rank=4)
    for t in adapter.parameters():
        t.requires_grad_(True)
    lora.attach(m, adapter)
    assert torch.equal(m(*args), before)  # zero up-projection: a fresh adapter changes nothing
    assert len(adapter.parameters()) == 2 * len(layers)
    assert not any(p.requires_grad for p in m.parameters())
    m(*args).pow(2).mean().backward()
    assert all(t.grad is not None for t in adapter.parameters())
    assert set(m.state_dict()) == set(Denoiser(TINY).state_dict())  # adapters live outside the base


def test_features_round_trip_and_canonical_frame():
    clip = _walk()
    q = torch.as_tensor(clip.rotations)[None].float()
    r = torch.as_tensor(clip.root_translation)[None].float()
    f = rep.encode(q, r, clip.fps)
    assert f.shape == (1, clip.num_frames, rep.NUM_FEATURES)
    assert torch.allclose(f[0, 0, :2], torch.zeros(2), atol=1e-6), "frame 0 over the origin"
    rotm, root = rep.decode_rotmats(f)
    assert abs(float(rep.heading(rotm[0, 0, 0]))) < 1e-5, "frame 0 faces -Y"
    # shape of the motion is unchanged: joint distances to the pelvis are preserved
    pos_a = torch.as_tensor(clip.positions()).float()
    pos_b = rep.positions(f)[0]
    da = (pos_a - pos_a[:, :1]).norm(dim=-1)
    db = (pos_b - pos_b[:, :1]).norm(dim=-1)
    assert torch.allclose(da, db, atol=1e-4)
    q2, _, contacts = rep.decode(f)
    assert torch.allclose(rep.quat_to_matrix(q2[0, :, 1:]), rep.quat_to_matrix(q[0, :, 1:]), atol=1e-5)
    assert ((contacts == 0) | (contacts == 1)).all()


def test_text_encoder_runs_offline_and_hears_paraphrases():
    from inference.generation.text import encode

    e = encode(["a person walks forward", "someone strolls ahead", "a person raises both hands", ""])
    assert e.shape == (4, 384)
    assert np.allclose(np.linalg.norm(e[:3], axis=1), 1, atol=1e-4) and not e[3].any()
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_clips_longer_than_the_training_window_are_chained(gen):
    assert gen.windows(32) == [(0, 32)]
    wins = gen.windows(60)
    assert wins[0] == (0, 32) and wins[-1][1] == 60 and all(b - a == 32 for a, b in wins)
    assert all(wins[k + 1][0] < wins[k][1] for k in range(len(wins) - 1)), "windows overlap"
    seen = []
    ref = _walk(60)
    mask = keyframe_mask(60, [0, 45, 59])
    res = gen.generate(known=ref, mask=mask, seed=2, steps=3, text_embedding=_text(),
                       callback=lambda p: seen.append((p.step, p.total)))
    assert seen == [(k + 1, 3 * len(wins)) for k in range(3 * len(wins))]
    assert res.clip.num_frames == 60
    for f in (0, 45, 59):
        assert np.abs(res.clip.rotations[f] - ref.rotations[f]).max() < 1e-12
        assert np.abs(res.clip.root_translation[f] - ref.root_translation[f]).max() < 1e-12
    again = gen.generate(known=ref, mask=mask, seed=2, steps=3, text_embedding=_text())
    assert np.array_equal(again.clip.rotations, res.clip.rotations)


def test_cli_writes_a_y_up_bvh_that_reads_back_as_the_same_motion(tiny_dir, tmp_path):
    from inference.__main__ import clip_to_bvh, main
    from inference.body.bvh import read_bvh, write_bvh
    from inference.retargeting.retarget import bvh_to_canonical

    clip = _walk(30)
    write_bvh(tmp_path / "w.bvh", clip_to_bvh(clip))
    back = read_bvh(tmp_path / "w.bvh")
    _, pos = back.forward_kinematics()
    head = JOINT_NAMES.index("head")
    assert pos[:, head, 1].min() > 1.3, "Y is up in the file"
    again = bvh_to_canonical(back, scale_root=False)
    assert np.abs(again.positions() - clip.positions()).max() < 1e-4
    out = tmp_path / "cli.bvh"
    assert main(["generate", "--prompt", "", "--seconds", "1.5", "--steps", "2", "--model", str(tiny_dir),
                 "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    assert read_bvh(out).num_frames == 30
    assert main(["generate", "--prompt", "", "--seconds", "0", "--model", str(tiny_dir), "--out", str(out)]) == 2


def test_output_smoothing_removes_frame_noise_but_keeps_motion_and_known_values(gen):
    torch.manual_seed(0)
    t = torch.arange(80, dtype=torch.float32) / 20.0
    slow = torch.sin(2 * np.pi * 1.0 * t)  # a 1 Hz swing, like a walk cycle
    f = torch.zeros(1, 80, rep.NUM_FEATURES)
    f[0, :, 5] = slow + 0.2 * torch.randn(80)
    f[0, :, rep.CONTACT] = (torch.rand(80, 4) > 0.5).float()
    s = rep.smooth(f, 1.0)
    jerk = lambda x: x.diff(n=3).abs().mean()
    assert jerk(s[0, :, 5]) < 0.3 * jerk(f[0, :, 5])
    kept = torch.corrcoef(torch.stack([s[0, :, 5], slow]))[0, 1]
    assert kept > 0.97, "the 1 Hz motion survives"
    assert s[0, :, 5].abs().max() > 0.85, "and keeps its amplitude"
    assert torch.equal(s[..., rep.CONTACT], f[..., rep.CONTACT])
    ref = _walk()
    mask = keyframe_mask(ref.num_frames, [0, 20])
    res = gen.generate(known=ref, mask=mask, seed=3, steps=3, text_embedding=_text(), smoothing=1.5)
    assert np.abs(res.clip.rotations[[0, 20]] - ref.rotations[[0, 20]]).max() < 1e-12


def test_asking_for_a_missing_gpu_is_explained(tiny_dir):
    from inference.generation.generate import _gpu

    if _gpu() is not None:
        pytest.skip("this machine has a GPU")
    with pytest.raises(MotionError, match="no GPU"):
        Generator(tiny_dir, "GPU")
    assert Generator(tiny_dir, "AUTO").device.type == "cpu"
