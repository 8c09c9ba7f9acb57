"""Style adapters, presets, the learner and restyling, on a tiny random-weight model."""
import json
import threading

import numpy as np
import pytest
import torch

from inference.generation import lora
from inference.generation import representation as rep
from inference.generation.diffusion import Cancelled
from inference.generation.generate import Generator
from inference.generation.job import CANCELLED, FINISHED, poll
from inference.generation.learner import LearnRequest, learn, learning_job
from inference.generation.model import Denoiser, ModelConfig, ModelError
from inference.body.motion import MotionClip
from inference.generation.request import GenerationRequest, Style
from inference.generation.restyle import kept_error, restyle
from inference.generation.style import StyleCard, StyleError, StyleExists, StyleLibrary, read_preset

TINY = ModelConfig(width=32, layers=2, heads=2, max_frames=64, window_frames=32, min_frames=20, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    Denoiser(TINY).save(folder)
    return Generator(folder, "cpu")


def _args(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 12, rep.NUM_FEATURES, generator=g)
    return x, torch.tensor([5, 500]), torch.randn(2, 384, generator=g), x, torch.zeros_like(x)


def _trained(model, name, seed, shift=True):
    """An adapter with non-zero up-projections and a condition shift, as if learned."""
    a = lora.create(model, name, rank=4, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    for lname, (down, up) in a.weights.items():
        a.weights[lname] = (down, torch.randn(up.shape, generator=g) * 0.2)
    if shift:
        a.shift = torch.randn(model.config.width, generator=g) * 0.5
    return a


def _walk(n=60, fps=20.0, seed=0):
    from inference.body import quat

    t = np.arange(n) / fps
    rot = np.tile(quat.IDENTITY, (n, 22, 1))
    phase = seed * 0.7
    for j, amp in ((1, 0.5), (4, -0.5), (2, 0.6), (5, 0.6), (16, 0.4), (17, -0.4)):
        rot[:, j] = quat.from_axis_angle(np.array([1.0, 0, 0]), amp * np.sin(2 * np.pi * t + phase))
    root = np.stack([0.3 * np.sin(t), -1.2 * t, 0.9 + 0.02 * np.sin(4 * np.pi * t)], -1)
    return MotionClip(rot, root, fps)


# ------------------------------------------------------------------------------------ adapters
def test_zero_strength_reproduces_the_base_exactly(gen):
    m = gen.model
    before = m(*_args())
    a = _trained(m, "a", 1)
    with lora.applied(m, [(a, 0.0)]):
        assert torch.equal(m(*_args()), before)
    with lora.applied(m, [(a, 1.0)]):
        assert not torch.allclose(m(*_args()), before, atol=1e-3)
    assert lora.attached(m) == [] and torch.equal(m(*_args()), before)


def test_zero_strength_style_through_a_request_gives_the_base_motion(gen, tmp_path):
    lib = StyleLibrary(tmp_path, read_only=())
    p = lib.save(_trained(gen.model, "bent", 2), StyleCard("bent", gen.folder.name, gen.version, rank=4))
    base = gen.run(GenerationRequest("a person walks", seconds=1.5, steps=3, seeds=(4,)))
    zero = gen.run(GenerationRequest("a person walks", seconds=1.5, steps=3, seeds=(4,),
                                     styles=(Style("bent", 0.0, str(p.path)),)))
    full = gen.run(GenerationRequest("a person walks", seconds=1.5, steps=3, seeds=(4,),
                                     styles=(Style("bent", 1.0, str(p.path)),)))
    assert np.array_equal(base.takes[0].clip.rotations, zero.takes[0].clip.rotations)
    assert np.abs(base.takes[0].clip.rotations - full.takes[0].clip.rotations).max() > 1e-3
    assert lora.attached(gen.model) == []  # the shared model carries nothing into the next request


def test_merged_equals_unmerged_forward_and_unmerge_restores_the_weights(gen):
    m = gen.model
    weights = {k: v.clone() for k, v in m.state_dict().items()}
    a = _trained(m, "a", 3)
    lora.attach(m, a, 0.7)
    unmerged = m(*_args())
    lora.merge(m, "a")
    assert lora.attached(m) == []
    assert torch.allclose(m(*_args()), unmerged, atol=1e-5)
    lora.unmerge(m, "a")
    assert all(torch.equal(weights[k], v) for k, v in m.state_dict().items())


def test_two_adapters_mix(gen):
    m = gen.model
    a, b = _trained(m, "a", 4), _trained(m, "b", 5)
    with lora.applied(m, [(a, 1.0)]):
        only_a = m(*_args())
    with lora.applied(m, [(b, 1.0)]):
        only_b = m(*_args())
    with lora.applied(m, [(a, 1.0), (b, 0.0)]):
        assert torch.equal(m(*_args()), only_a)
    with lora.applied(m, [(a, 1.0), (b, 1.0)]):
        both = m(*_args())
    assert not torch.allclose(both, only_a, atol=1e-3) and not torch.allclose(both, only_b, atol=1e-3)
    # each wrapped layer adds both low-rank terms at their strengths
    name, layer = m.lora_layers()[0]
    x = torch.randn(3, layer.in_features)
    base = layer(x)
    with lora.applied(m, [(a, 0.5), (b, 1.5)]):
        mixed = layer(x)
    (da, ua), (db, ub) = a.weights[name], b.weights[name]
    assert torch.allclose(mixed, base + 0.5 * a.scale * x @ da.T @ ua.T + 1.5 * b.scale * x @ db.T @ ub.T, atol=1e-5)


def test_adapters_per_request_do_not_race_on_the_shared_model(gen, tmp_path):
    lib = StyleLibrary(tmp_path, read_only=())
    p = lib.save(_trained(gen.model, "race", 6), StyleCard("race", gen.folder.name, gen.version, rank=4))
    plain = GenerationRequest("a person waves", seconds=1.5, steps=4, seeds=(1,))
    styled = GenerationRequest("a person waves", seconds=1.5, steps=4, seeds=(1,),
                               styles=(Style("race", 1.0, str(p.path)),))
    want = {0: gen.run(plain).takes[0].clip.rotations, 1: gen.run(styled).takes[0].clip.rotations}
    got = {}

    def go(k, req):
        got.setdefault(k, []).append(gen.run(req).takes[0].clip.rotations)

    threads = [threading.Thread(target=go, args=(k % 2, [plain, styled][k % 2])) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in (0, 1):
        assert all(np.array_equal(r, want[k]) for r in got[k])


def test_the_shift_moves_the_motion_scales_with_strength_and_needs_the_right_width(gen):
    """The style's condition shift alone (no low-rank layers) changes the output, half strength
    is half the shift, and an adapter whose shift has another width is refused."""
    m = gen.model
    base = m(*_args())
    a = _trained(m, "s", 11)
    a.weights = {}
    with lora.applied(m, [(a, 1.0)]):
        full = m(*_args())
    assert not torch.allclose(full, base, atol=1e-3)
    half = lora.create(m, "h", rank=4)
    half.weights, half.shift = {}, 0.5 * a.shift
    with lora.applied(m, [(a, 0.5)]):
        by_strength = m(*_args())
    with lora.applied(m, [(half, 1.0)]):
        by_vector = m(*_args())
    assert torch.allclose(by_strength, by_vector, atol=1e-6)
    assert torch.equal(m(*_args()), base)  # detached again
    wrong = _trained(m, "w", 12)
    wrong.shift = torch.zeros(m.config.width + 1)
    with pytest.raises(ModelError, match="another shape"):
        lora.attach(m, wrong, 1.0)
    assert lora.attached(m) == []


def test_a_preset_without_a_shift_still_loads_and_applies(gen, tmp_path):
    """Presets saved before adapters carried a shift."""
    a = _trained(gen.model, "old", 13, shift=False)
    lora.save(a, tmp_path / "old.safetensors")
    b, _ = lora.load(tmp_path / "old.safetensors")
    assert b.shift is None
    with lora.applied(gen.model, [(b, 1.0)]):
        out = gen.model(*_args())
    assert not torch.allclose(out, gen.model(*_args()), atol=1e-3)


# ------------------------------------------------------------------------------------- presets
def test_preset_round_trips_through_save_and_load(gen, tmp_path):
    lib = StyleLibrary(tmp_path / "styles", read_only=())
    a = _trained(gen.model, "x", 7)
    card = StyleCard("Old Walk", gen.folder.name, gen.version, rank=4, description="bent", licence="CC BY-NC 4.0")
    p = lib.save(a, card)
    assert sorted(f.name for f in (tmp_path / "styles").iterdir()) == ["Old Walk.json", "Old Walk.safetensors"]
    again = StyleLibrary(tmp_path / "styles", read_only=())  # a new session (add-on re-registered)
    assert [q.name for q in again.presets()] == ["Old Walk"]
    b, card2 = read_preset(again.find("old walk").path, gen.folder.name, gen.version)
    assert card2 == card and b.name == "Old Walk" and b.rank == 4
    for k, (d, u) in a.weights.items():
        assert torch.equal(b.weights[k][0], d.half().float()) and torch.equal(b.weights[k][1], u.half().float())
    assert torch.equal(b.shift, a.shift)
    # export as one file, import under a new name elsewhere
    f = lib.export("Old Walk", tmp_path / "shared")
    other = StyleLibrary(tmp_path / "other", read_only=())
    q = other.import_file(f, gen.folder.name, gen.version, name="Grandpa")
    assert q.name == "Grandpa" and read_preset(q.path)[1].description == "bent"


def test_bad_preset_files_are_refused_and_change_nothing(gen, tmp_path):
    lib = StyleLibrary(tmp_path / "mine", read_only=())
    good = lib.save(_trained(gen.model, "g", 8), StyleCard("good", gen.folder.name, gen.version, rank=4))
    data = good.path.read_bytes()
    before = sorted(p.name for p in (tmp_path / "mine").iterdir())
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.safetensors").write_bytes(b"not a preset at all")
    cases = [(tmp_path / "trunc.safetensors", "damaged or truncated"),
             (tmp_path / "junk.safetensors", "damaged or truncated"),
             (gen.folder / "model.safetensors", "not a Marionette style preset")]
    for path, words in cases:
        with pytest.raises(StyleError, match=words):
            lib.import_file(path, gen.folder.name, gen.version)
    with pytest.raises(StyleError, match="learned on the model .* not on this one"):
        lib.import_file(good.path, "other-model", "0123456789ab", name="copy")
    # the name is taken: asked, never overwritten silently
    with pytest.raises(StyleExists, match="already exists"):
        lib.import_file(good.path, gen.folder.name, gen.version)
    assert good.path.read_bytes() == data
    with pytest.raises(StyleError, match="cannot be a style name"):
        lib.save(_trained(gen.model, "g", 8), StyleCard("../evil", gen.folder.name, gen.version))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == before
    # a preset for another base model is refused when generating too
    other = lib.save(_trained(gen.model, "o", 9), StyleCard("foreign", "other-model", "0123456789ab"))
    with pytest.raises(StyleError, match="Learn it again"):
        gen.run(GenerationRequest("a person walks", seconds=1.5, steps=2, styles=(Style("foreign", 1.0,
                                                                                      str(other.path)),)))


# ------------------------------------------------------------------------------------- learner
@pytest.mark.parametrize("clips,words", [
    ([], "Select the actions"),
    ([_walk(60), _walk(60)], "at least 3 clips"),
    ([_walk(60), _walk(60), _walk(10)], "shorter than 1 s"),
    ([_walk(40), _walk(40), _walk(40)], "at least 10 s"),
])
def test_learning_bad_input_has_a_message(clips, words):
    with pytest.raises(StyleError, match=words):
        LearnRequest("mine", clips)


@pytest.mark.parametrize("detail", [False, True])
def test_learning_changes_the_output_and_not_the_base(gen, detail, tmp_path):
    from inference.generation.style_words import STYLE_WORDS

    weights = {k: v.clone() for k, v in gen.model.state_dict().items()}
    clips = [_walk(80, seed=k) for k in range(3)]
    a, card = learn(gen, LearnRequest("bouncy", clips, steps=6, prior_clips=2, texts=["a person walks"] * 3,
                                      detail=detail))
    assert all(torch.equal(weights[k], v) for k, v in gen.model.state_dict().items())
    assert card.base_version == gen.version and card.steps == 6
    assert card.extra["start_word"] in STYLE_WORDS and a.shift is not None
    assert card.extra["style_words"] and min(card.extra["style_words"].values()) >= 0  # a mixture of known styles
    if detail:  # the low-rank layers learned something
        assert card.rank == 8 and a.weights and any(float(up.abs().max()) > 0 for _, up in a.weights.values())
    else:  # the style in known words only: no low-rank layers at all
        assert card.rank == 0 and a.weights == {}
    with lora.applied(gen.model, [(a, 1.0)]):
        styled = gen.model(*_args())
    assert not torch.allclose(styled, gen.model(*_args()), atol=1e-4)
    lib = StyleLibrary(tmp_path, read_only=())
    b, _ = read_preset(lib.save(a, card).path)
    assert torch.equal(b.shift, a.shift) and sorted(b.weights) == sorted(a.weights)


def test_a_style_with_nothing_to_learn_or_an_unknown_start_word_is_refused(gen):
    clips = [_walk(80, seed=k) for k in range(3)]
    with pytest.raises(StyleError, match="Nothing to learn"):
        LearnRequest("none", clips, shift=False, detail=False)
    with pytest.raises(StyleError, match="Unknown style word 'zombie'"):
        LearnRequest("none", clips, start="zombie")
    a, card = learn(gen, LearnRequest("given", clips, steps=2, start="elderly", texts=["a person walks"] * 3))
    assert card.extra["start_word"] == "elderly"


def test_cancel_during_learning_leaves_no_partial_file(gen, tmp_path):
    lib = StyleLibrary(tmp_path / "styles", read_only=())
    clips = [_walk(80, seed=k) for k in range(3)]
    job = learning_job(lambda: gen, LearnRequest("halfway", clips, steps=200, prior_clips=1,
                                                 texts=["a person walks"] * 3), lib)
    seen = []

    def on_progress(p):
        seen.append(p.step)
        return p.step >= 4  # the animator presses Esc a few steps in

    job.on_progress = on_progress
    job.run()
    assert poll(job).status == CANCELLED and max(seen) < 200
    assert not (tmp_path / "styles").exists() or list((tmp_path / "styles").iterdir()) == []
    # the same request run to the end writes exactly the preset
    job = learning_job(lambda: gen, LearnRequest("halfway", clips, steps=3, prior_clips=1,
                                                 texts=["a person walks"] * 3), lib)
    job.run()
    assert poll(job).status == FINISHED
    assert sorted(f.name for f in (tmp_path / "styles").iterdir()) == ["halfway.json", "halfway.safetensors"]
    with pytest.raises(StyleExists):
        learning_job(lambda: gen, LearnRequest("halfway", clips, steps=3), lib)


# ------------------------------------------------------------------------------------- restyle
def test_restyle_keeps_the_root_path_and_timing(gen):
    clip = _walk(50)
    a = _trained(gen.model, "r", 10)
    out = restyle(gen, clip, ((a, 1.0),), amount=0.5, prompt="a person walks", steps=4)
    assert out.clip.num_frames == clip.num_frames
    assert np.array_equal(out.clip.root_translation[:, :2], clip.root_translation[:, :2])
    assert kept_error(clip, out.clip)["root_m"] == 0.0  # feet: measured on the real model by benchmarks/style.py
    assert lora.attached(gen.model) == []
