"""The shipped weights (assets/models/marionette-base) load and do what the prompt says, on CPU."""
import json

import numpy as np
import pytest
import torch

from inference.generation.generate import Generator, default_model_dir
from inference.generation.text import encode
from inference.generation.reader import named_side
from training import reader as reader_build
from inference.body.skeleton import JOINT_NAMES

J = {n: i for i, n in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Generator(None, "cpu")


def test_shipped_folder_is_complete_and_small():
    folder = default_model_dir()
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md", "training.json", "vocabulary.json",
                 "reader.npz", "reader.json"):
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


def test_a_sidestep_prompt_steps_sideways_instead_of_turning(shipped):
    # the dataset's sidesteps turn the pelvis by at most 25 degrees over 4 s, its walks that turn left by
    # 58-115 (training split, `rep.heading`); before the reader's content offsets the model turned
    # 77-103 degrees for these prompts, walking a curve where it was asked to step aside
    from inference.generation import representation as rep

    turns, lateral = [], []
    for prompt in ("a person walks sideways to the left", "she sidesteps to her left"):
        for seed in (0, 1):
            clip = shipped.generate(prompt, num_frames=80, seed=seed).clip
            h = np.unwrap(rep.heading(rep.quat_to_matrix(torch.as_tensor(clip.rotations[:, 0]))).numpy())
            turns.append(np.degrees(h[-1] - h[0]))
            lateral.append(clip.root_translation[-1, 0] - clip.root_translation[0, 0])
    assert np.median(np.abs(turns)) < 40, f"turned {np.round(turns)} degrees"
    assert min(lateral) > 0.5, f"moved {np.round(lateral, 2)} m towards its left (+X)"


def test_a_style_turned_up_fades_the_content_offset_out(shipped):
    # a learned style was recognised on none of the offset contents' prompts while the offset stayed on
    from inference.generation import lora
    from inference.generation.text import encode

    r = shipped.reader()
    noop = lora.create(shipped.model, "noop", rank=2)  # zero up-projections and no shift: changes nothing
    prompt = "a person walks sideways to the left"
    base = shipped.generate(prompt, seconds=1.0, seed=0)
    k = r.sentences.index(base.read_as)
    assert np.any(r.content_shift[r.bank_content[k]]), "a content that has an offset"
    # ...except at the noisy steps, where what the motion is gets decided (`defaults.NOISY_CONTENT_FROM`)
    whole = r.read(encode(prompt)[0], prompt, offset=1.0).embedding
    plain = shipped.generate(seconds=1.0, seed=0, text_embedding=r.bank[k], noisy_text_embedding=whole)
    styled = shipped.generate(prompt, seconds=1.0, seed=0, adapters=((noop, 1.0),))
    assert np.allclose(styled.clip.rotations, plain.clip.rotations, atol=1e-5), "style at 1: no offset"
    assert not np.allclose(base.clip.rotations, plain.clip.rotations, atol=1e-3)
    nowhere = shipped.generate(seconds=1.0, seed=0, text_embedding=r.bank[k])
    assert not np.allclose(styled.clip.rotations, nowhere.clip.rotations, atol=1e-3), "the noisy steps keep it"
    zero = shipped.generate(prompt, seconds=1.0, seed=0, adapters=((noop, 0.0),))
    assert np.array_equal(zero.clip.rotations, base.clip.rotations), "style at 0: the offset as without styles"
    # gone by half strength (at 0.5 a style read no more than at 0 while half the offset stayed)
    half = shipped.generate(prompt, seconds=1.0, seed=0, adapters=((noop, 0.5),))
    assert np.allclose(half.clip.rotations, plain.clip.rotations, atol=1e-5), "style at 0.5: no offset"
    quarter = shipped.generate(prompt, seconds=1.0, seed=0, adapters=((noop, 0.25),))
    assert not np.allclose(quarter.clip.rotations, plain.clip.rotations, atol=1e-3), "style at 0.25: half of it"


def test_left_and_right_are_not_confused(shipped):
    up = {}
    for side in ("left", "right"):
        pos = shipped.generate(f"a person raises the {side} hand", seconds=3.0, seed=2).clip.positions()
        up[side] = pos[:, J["left_wrist"], 2].max() - pos[:, J["right_wrist"], 2].max()
    assert up["left"] > 0.2 and up["right"] < -0.2


def test_prompts_are_read_for_the_motion_their_words_name(shipped):
    r = shipped.reader()
    # the reader says back what each of its own sentences was labelled with
    own = [r.contents[k] for k in r.bank_content]
    assert np.mean([r.read(e).content == c for e, c in zip(r.bank, own)]) > 0.95
    # prompts worded freely (training/paraphrases_dev.json): read 0.90 when the reader was built
    prompts, truth = reader_build.dev_prompts()
    got = [r.read(e, p).content for e, p in zip(encode(prompts), prompts)]
    assert np.mean([g == t for g, t in zip(got, truth)]) >= 0.85
    # the side the words name is the side read ("steps sideways towards his left" had read as a walk to the right)
    sided = [(p, g) for p, g in zip(prompts, got) if named_side(p)]
    assert len(sided) >= 10 and all(named_side(g) in ("", named_side(p)) for p, g in sided)
    # a sidestep's words in a manner turning walks are common in (20 turning walks per sidestep in the
    # data) are read as the sidestep: the unweighted classifier had read this one as a turning walk
    assert r.read(encode(["a tired man walks to the right"])[0], "a tired man walks to the right").content == "walk-right"
    # a prompt is given to the model as a sentence of the content it names, and the result says which
    prompt = "she sidesteps to her left"
    res = shipped.generate(prompt, seconds=1.0, seed=0)
    k = r.sentences.index(res.read_as)
    assert r.contents[r.bank_content[k]] == "walk-left"
    as_read = shipped.generate(seconds=1.0, seed=0, text_embedding=r.bank[k] + r.content_shift[r.bank_content[k]])
    assert np.array_equal(res.clip.rotations, as_read.clip.rotations), "the model was given the sentence"
    assert res.nearest == shipped.nearest_known(encode(prompt)[0]), "how familiar the prompt is stays the prompt's own"
    literal = shipped.generate(prompt, seconds=1.0, seed=0, read_prompt=False)
    assert literal.read_as == "" and not np.allclose(literal.clip.rotations, res.clip.rotations, atol=1e-3)


def _facing_travel(clip) -> float:
    """Metres the pelvis moved along the way the body faced at the start (negative: backwards)."""
    p = clip.positions()
    across = p[:10, J["left_hip"]].mean(0) - p[:10, J["right_hip"]].mean(0)
    across[2] = 0
    forward = np.cross(across / np.linalg.norm(across), [0.0, 0.0, 1.0])
    return float((p[-1, 0] - p[0, 0])[:2] @ forward[:2])


def test_a_walk_back_prompt_steps_backwards_as_a_forward_walk_played_in_reverse(shipped):
    # From its walk-back sentences (8 training takes) the model stood and slid backwards: for "the
    # person nervously steps backward" the feet moved 0.36 times as far as the pelvis, where the 11 real
    # backward walks move them 0.95-1.11 times as far. It is now the closest forward walk, reversed.
    r = shipped.reader()
    for prompt in ("the person nervously steps backward", "a person walks backwards"):
        res = shipped.generate(prompt, num_frames=80, seed=0)
        assert res.read_as.endswith("(played backwards)"), res.read_as
        sentence = res.read_as[: -len(" (played backwards)")]
        k = r.sentences.index(sentence)
        assert r.contents[r.bank_content[k]] == "walk"
        forward = shipped.generate(num_frames=80, seed=0, text_embedding=r.bank[k]).clip
        assert np.allclose(res.clip.rotations, forward.rotations[::-1], atol=1e-6), "the same poses, last first"
        assert np.allclose(res.clip.root_translation[0, :2], forward.root_translation[0, :2]), \
            "it starts where a generated walk starts, not where the reversed walk ended"
        assert _facing_travel(res.clip) < -1.0, f"{prompt}: moved {_facing_travel(res.clip):.2f} m along its facing"
        p = res.clip.positions()
        feet = np.linalg.norm(np.diff(p[:, [J["left_foot"], J["right_foot"]], :2], axis=0), axis=-1).sum(0).mean()
        pelvis = np.linalg.norm(np.diff(p[:, 0, :2], axis=0), axis=-1).sum()
        assert feet > 0.8 * pelvis, f"{prompt}: feet moved {feet / pelvis:.2f} times as far as the pelvis"


def test_keys_under_a_walk_back_prompt_stay_on_their_frames(shipped):
    # the known values are reversed in time with the motion, and reversed back with it
    from inference.generation.constraints import keyframe_mask

    walk = shipped.generate("a person walks forward", num_frames=60, seed=3).clip
    known = walk.reversed()  # a backward walk to key
    mask = keyframe_mask(60, [0, 25, 59])
    res = shipped.generate("a person walks backwards", num_frames=60, seed=0, known=known, mask=mask)
    assert res.read_as.endswith("(played backwards)")
    for f in (0, 25, 59):
        assert np.allclose(res.clip.root_translation[f], known.root_translation[f], atol=1e-6)
        assert np.allclose(np.abs((res.clip.rotations[f] * known.rotations[f]).sum(-1)), 1.0, atol=1e-6)
    assert not np.allclose(res.clip.root_translation[5:20], known.root_translation[5:20], atol=1e-3), \
        "the free frames are the model's"


def test_prompts_outside_the_labelled_motions_are_used_as_written(shipped):
    for prompt in ("a person is salsa dancing", "zxqv blorp"):
        read = shipped.generate(prompt, seconds=1.0, seed=3)
        literal = shipped.generate(prompt, seconds=1.0, seed=3, read_prompt=False)
        assert read.read_as == "" and np.array_equal(read.clip.rotations, literal.clip.rotations), prompt
