"""Training data helpers, masks, and the training loop (resume + export) on a tiny synthetic set."""
import json
import random

import numpy as np
import pytest
import torch

from inference.body import quat
from inference.generation import representation as rep
from inference.generation.generate import Generator
from inference.generation.model import Denoiser, ModelConfig
from inference.generation.reader import PromptReader, named_side
from inference.generation.text import mirror_text, names_backwards, names_sideways
from training import build_dataset as bd
from training import reader, train
from training.masks import MASK_KINDS, random_mask


def test_label_sentences_are_varied_and_say_content_and_style():
    s = bd.bandai_sentences("wave-right-hand", "elderly", 12, random.Random(0))
    assert len(s) == len(set(s)) == 12
    assert all("right" in x for x in s)
    assert all(any(w in x for w in ("elderly", "old", "frail", "slowly")) for x in s), "every one says the style"
    assert any(x.startswith(("he ", "she ")) for x in bd.bandai_sentences("walk", "normal", 60, random.Random(2)))
    tired = bd.bandai_sentences("walk", bd.style_key("exhausted"), 8, random.Random(1))
    assert any(w in x for x in tired for w in ("tired", "wearily", "exhausted"))


def test_mirrored_text_swaps_sides_and_turning_direction():
    assert mirror_text("a person raises the left hand, then the Right one") == \
        "a person raises the right hand, then the Left one"
    assert mirror_text("turns clockwise") == "turns counterclockwise"
    assert mirror_text("spins counter-clockwise") == "spins clockwise"
    assert mirror_text("leftover bright") == "leftover bright", "only whole words"
    assert bd.mirror_label("walk-turn-left") == "walk-turn-right"


def test_split_is_by_take_and_stable():
    keys = [f"dataset-2_walk_normal_{i:03d}" for i in range(400)]
    splits = [bd.split_for(k) for k in keys]
    assert splits == [bd.split_for(k) for k in keys]
    frac = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.05 < frac["test"] < 0.16 and 0.01 < frac["val"] < 0.1


def test_cmu_captions_follow_their_time_span():
    src = dict(fps=60.0, captions=[
        dict(caption="playground - climb", start_s="0.0", end_s=""),
        dict(caption="a person climbs", start_s="2.0", end_s="6.0"),
        dict(caption="someone climbs up", start_s="2.0", end_s="6.0"),
        dict(caption="too short", start_s="9.9", end_s="10.2"),
    ])
    segs = bd.cmu_segments(src, num_frames=200, dropped=1)
    assert len(segs) == 1
    start, stop, texts = segs[0]
    assert (start, stop) == (40, 120) and texts == ["a person climbs", "someone climbs up"]
    only_desc = bd.cmu_segments(dict(fps=60.0, captions=src["captions"][:1]), num_frames=200, dropped=0)
    assert only_desc == [(0, 200, ["playground - climb"])]


@pytest.mark.parametrize("kind", [k for k, _ in MASK_KINDS])
def test_every_mask_kind(kind):
    rng = random.Random(3)
    for _ in range(20):
        m = random_mask(50, rng, kind)
        assert m.shape == (50, rep.NUM_FEATURES)
        if kind == "none":
            assert m.sum() == 0
        else:
            assert m.sum() > 0 and m.sum() < m.numel()


# ------------------------------------------------------------------------- tiny synthetic dataset
def _clip(n, height, phase):
    t = np.arange(n) / 20.0
    rot = np.tile(quat.IDENTITY, (n, 22, 1)).astype(np.float32)
    for j in (4, 5, 16, 17):
        rot[:, j] = quat.from_axis_angle(np.array([1.0, 0, 0]), 0.5 * np.sin(6 * t + phase + j))[:, None][:, 0]
    root = np.stack([0.3 * t, -1.2 * t, np.full(n, height)], 1).astype(np.float32)
    return rot, root


@pytest.fixture()
def tiny_dataset(tmp_path):
    rots, roots, clips = [], [], []
    start = 0
    for i in range(12):
        split = "test" if i % 4 == 0 else "train"
        rot, root = _clip(30 + 5 * i, 5.0 if split == "test" else 0.95, i)
        rots.append(rot)
        roots.append(root)
        clips.append(dict(source="fake", name=f"c{i}", content="walk", style="normal", take=i, split=split,
                          start=start, length=len(rot), mirrored=False, texts=[i % 3]))
        start += len(rot)
    d = tmp_path / "ds"
    d.mkdir()
    np.save(d / "rotations.npy", np.concatenate(rots))
    np.save(d / "root.npy", np.concatenate(roots))
    np.save(d / "text_emb.npy", np.eye(3, 384, dtype=np.float16))
    meta = dict(version=1, fps=20.0, clips=clips, texts=["a", "b", "c"], contents=["walk"], styles=["normal"],
                exclude_content=[], exclude_style=["happy"])
    (d / "clips.json").write_text(json.dumps(meta))
    return d


def test_training_never_sees_test_clips(tiny_dataset):
    meta, rot, root, emb = bd.load(tiny_dataset)
    s = train.WindowSampler(meta, np.asarray(rot), np.asarray(root), torch.from_numpy(emb), "train")
    for _ in range(20):
        _, r, valid, _ = s.batch(8, 40)
        assert r[..., 2].max() < 2.0, "a test clip (root height 5 m) was sampled"
        assert valid[:, 0].all()


def test_training_resumes_and_exports_a_loadable_model(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MARIONETTE_CACHE", str(tmp_path / "cache"))
    common = ["--run", "t", "--data", str(tiny_dataset), "--width", "32", "--layers", "2", "--heads", "2",
              "--batch", "4", "--min-frames", "10", "--max-frames", "24", "--threads", "1", "--log-every", "1"]
    n = torch.get_num_threads()
    try:
        train.main(common + ["--steps", "3"])
        ck = torch.load(tmp_path / "cache" / "runs" / "t" / "ckpt.pt", weights_only=False)
        assert ck["state"]["step"] == 3
        train.main(common + ["--steps", "5"])
        ck = torch.load(tmp_path / "cache" / "runs" / "t" / "ckpt.pt", weights_only=False)
    finally:
        torch.set_num_threads(n)
    assert ck["state"]["step"] == 5, "second run resumed from step 3 and stopped at 5"
    log = [json.loads(l) for l in (tmp_path / "cache" / "runs" / "t" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r["total"]) for r in log)
    out = train.export("t", tmp_path / "model")
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 5 and info["data"]["exclude_style"] == ["happy"]
    res = Generator(out, "cpu").generate(num_frames=16, steps=2, text_embedding=np.zeros(384, np.float32))
    assert res.clip.num_frames == 16 and np.isfinite(res.clip.rotations).all()
    assert PromptReader.load(out) is not None, "the exported folder reads prompts as the shipped one does"


def test_styles_and_contents_can_be_left_out():
    if bd.data.bandai_dir() is None:
        pytest.skip("Bandai-Namco data (../shared/data) is not on this machine")
    full = bd.bandai_sources()
    cut = bd.bandai_sources(exclude_content={"kick"}, exclude_style={"elderly"})
    assert {"elderly", "tired"} <= {s["style"] for s in full}
    assert "elderly" not in {s["style"] for s in cut} and "kick" not in {s["content"] for s in cut}
    assert "tired" in {s["style"] for s in cut}
    # dataset-1 calls it "old": one name removes both
    assert not [s for s in cut if "_old_" in s["name"]]
    assert len(cut) < len(full) - 300


@pytest.mark.parametrize("kept", train.MIX_KEPT)
def test_part_mix_keeps_one_clips_part_and_takes_the_rest_and_the_text_from_another(kept):
    """The windows that teach part editing: the kept part (known to the model) is the first clip's,
    every other joint and the prompt are the second clip's, so the free part must follow the text."""
    from inference.body.skeleton import BODY_PART_BY_NAME, JOINT_NAMES
    from inference.generation.constraints import part_columns

    g = torch.Generator().manual_seed(0)
    n, length = 12, 16
    q = torch.nn.functional.normalize(torch.randn(length, 22, 4, generator=g), dim=-1)
    r = torch.randn(length, 3, generator=g)
    oq = torch.nn.functional.normalize(torch.randn(n, 22, 4, generator=g), dim=-1)
    orr = torch.randn(n, 3, generator=g)
    text, otext = torch.ones(384), torch.full((384,), 2.0)
    mq, mr, mt, mask = train.part_mix(q, r, text, n, (oq, orr, otext), kept)
    part = BODY_PART_BY_NAME[kept]
    own = [JOINT_NAMES.index(j) for j in part.joints]
    rest = [i for i in range(22) if i not in own]
    assert torch.equal(mq[:n, own], q[:n, own]) and torch.equal(mq[:n, rest], oq[:, rest])
    assert torch.equal(mt, otext)
    if part.root_translation:
        assert torch.equal(mr[:n], r[:n])
    else:  # the other clip's path, moved to start where this window starts on the ground, height kept
        assert torch.allclose(mr[:n, 2], orr[:, 2])
        assert torch.allclose(mr[0, :2], r[0, :2]) and torch.allclose(mr[1:n, :2] - mr[0, :2], orr[1:, :2] - orr[0, :2])
    m = mask.numpy().astype(bool)
    assert m.shape == (n, rep.NUM_FEATURES)
    assert (m[:, part_columns([kept])]).all() and not m[:, ~part_columns([kept])].any()


def test_training_batches_with_part_mix_are_masked_and_finite(tiny_dataset):
    meta, rot, root, emb = bd.load(tiny_dataset)
    s = train.WindowSampler(meta, np.asarray(rot), np.asarray(root), torch.from_numpy(emb), "train")
    it = iter(train.Batches(s, 6, 10, 20, 0.0, seed=1, mix=1.0))
    q, r, valid, text, mask = next(it)
    assert torch.isfinite(q).all() and torch.isfinite(r).all()
    n = valid.sum(1)
    # every window was composed: each keeps exactly one part, nothing known on padding
    assert all(mask[b, :int(n[b])].any() for b in range(6))
    assert not (mask * (~valid)[..., None]).any()


def test_balanced_sampling_shows_rare_contents_more_often(tiny_dataset):
    """One content with one short take among many long takes of another: by length alone the rare
    one is hardly ever drawn; balanced, its share rises toward the common one's."""
    meta, rot, root, emb = bd.load(tiny_dataset)
    meta = json.loads(json.dumps(meta))
    train_clips = [c for c in meta["clips"] if c["split"] == "train"]
    train_clips[0]["content"] = "dash"
    share = {}
    for balance in (0.0, 0.5, 1.0):
        s = train.WindowSampler(meta, np.asarray(rot), np.asarray(root), torch.from_numpy(emb), "train",
                                balance=balance)
        share[balance] = sum(p for c, p in zip(s.clips, s.p) if c["content"] == "dash")
    assert share[0.0] < 0.1 < share[0.5] < share[1.0]
    assert abs(share[1.0] - 0.5) < 1e-9, "fully balanced: each content half of the windows"


def test_tremor_loss_charges_only_alternation_beyond_the_real_motions():
    """An estimate whose wrist alternates by 1 cm between even and odd frames is charged; the same
    alternation in the real motion (the target) costs nothing, and a smooth fast swing costs nothing."""
    t = torch.arange(60, dtype=torch.float32)
    swing = torch.zeros(1, 60, 22, 3)
    swing[..., 0] = 0.3 * torch.sin(2 * torch.pi * 2.0 * t / 20.0)[None, :, None]  # a 2-Hz, 30-cm wave
    buzz = swing.clone()
    buzz[0, :, 13, 0] += 0.01 * (1 - 2 * (t % 2))  # one joint alternating by 1 cm
    w = torch.ones(1, 60)
    charged = float(train.tremor_excess(buzz, swing, w))
    assert charged > 0.5  # (4 cm/frame^2)^2 on 1 joint of 22
    assert float(train.tremor_excess(swing, swing, w)) == 0.0
    assert float(train.tremor_excess(buzz, buzz, w)) == 0.0
    assert float(train.tremor_excess(swing, buzz, w)) < 0.1 * charged
    # a fast swing 10 % wider than the real one is an ordinary error, not a tremor
    assert float(train.tremor_excess(1.1 * swing, swing, w)) < 0.05 * charged
    # padding frames (weight 0) are not read
    w_pad = w.clone()
    w_pad[0, :] = 0
    assert float(train.tremor_excess(buzz, swing, w_pad)) == 0.0


def test_a_deeper_model_warm_started_from_a_shallower_one_starts_where_it_was(tmp_path):
    torch.manual_seed(0)
    small = Denoiser(ModelConfig(width=32, layers=2, heads=2)).eval()
    for p in small.parameters():  # trained-looking weights: nothing left at zero
        torch.nn.init.normal_(p, std=0.1)
    small.save(tmp_path / "small")
    deep = Denoiser(ModelConfig(width=32, layers=4, heads=2)).eval()
    fresh = train.warm_start(deep, tmp_path / "small")
    assert fresh and all(k.startswith(("blocks.2.", "blocks.3.", "mean", "std")) for k in fresh)
    deep.mean.copy_(small.mean), deep.std.copy_(small.std)
    x, t = torch.randn(2, 12, small.config.features), torch.tensor([10, 700])
    text, mask = torch.randn(2, 384), (torch.rand(2, 12, small.config.features) < 0.3).float()
    with torch.no_grad():
        a, b = small(x, t, text, x, mask), deep(x, t, text, x, mask)
    assert torch.allclose(a, b, atol=1e-3), "the new blocks change the output at the start"
    assert deep.blocks[3].ff1.weight.abs().sum() > 0, "the new blocks can still learn (only outputs zeroed)"


def test_a_share_of_each_batch_can_come_from_the_nearly_clean_end_of_the_schedule():
    from training.train import draw_steps

    torch.manual_seed(0)
    plain = draw_steps(4000, 1000)
    assert 0.15 < (plain < 200).float().mean() < 0.25 and plain.max() >= 900
    low = draw_steps(4000, 1000, low_noise=0.5)
    assert (low[:2000] < 200).all()
    assert 0.55 < (low < 200).float().mean() < 0.65


def test_the_prompt_reader_learns_which_words_name_the_content_and_keeps_a_few_sentences_per_pair():
    # one word (axis 0 or 1) says the content, another (3 or 4) the style, shared words (axis 2) dominate
    rng = np.random.default_rng(0)
    texts, emb, clips = [], [], []
    for k, (content, style) in enumerate([("walk", "normal"), ("wave", "tired"), ("wave", "normal")]):
        ids = []
        for i in range(12):
            v = np.zeros(384)
            v[0 if content == "walk" else 1] = 0.3
            v[3 if style == "normal" else 4] = 0.3
            v[2] = 2.0
            v[5:] = rng.normal(0, 0.05, 379)
            ids.append(len(texts))
            texts.append(f"{content} {style} {i}")
            emb.append(v / np.linalg.norm(v))
        clips.append(dict(content=content, style=style, split="train", texts=ids))
    clips.append(dict(content="", style="", split="train", texts=list(range(len(texts), len(texts) + 12))))
    for i in range(12):  # CMU captions
        v = np.zeros(384)
        v[6], v[2] = 1.0, 0.5
        v[7:] = rng.normal(0, 0.05, 377)
        texts.append(f"a person dances {i}")
        emb.append(v / np.linalg.norm(v))
    meta = dict(clips=clips, texts=texts)
    arrays, sentences = reader.build(meta, np.array(emb, np.float32), per_pair=4)
    assert len(sentences) == 12 and sentences[0] == "walk normal 0", "4 per (content, style), the first kept"
    r = PromptReader(arrays, sentences)
    back = np.zeros(384)
    back[1], back[2], back[3] = 0.3, 2.0, 0.3
    read = r.read(back / np.linalg.norm(back))
    assert read.content == "wave" and read.sentence.startswith("wave normal")
    assert r.read(v).sentence == "" and r.read(v).content == reader.FREE, "captions are used as written"
    assert r.read(np.zeros(384)).sentence == "", "no prompt, nothing read"


def test_a_rare_content_is_not_read_as_a_common_one_because_the_data_has_more_of_it(monkeypatch):
    # 200 sentences of a turning walk, 10 of a sidestep: both share most of their words (axis 2); one
    # weak word (axis 0 or 1) tells them apart, as "walks to the left" and "walks and turns left" do
    rng = np.random.default_rng(0)
    texts, emb, clips = [], [], []
    for content, n, axis in (("walk-turn-left", 200, 0), ("walk-left", 10, 1)):
        ids = []
        for i in range(n):
            v = np.zeros(384)
            v[axis], v[2] = 1.0, 2.0
            v[5:] = rng.normal(0, 0.05, 379)
            ids.append(len(texts))
            texts.append(f"{content} {i}")
            emb.append(v / np.linalg.norm(v))
        clips.append(dict(content=content, style="normal", split="train", texts=ids))
    meta = dict(clips=clips, texts=texts)
    asked = np.zeros(384)
    asked[1], asked[0], asked[2] = 1.0, 0.5, 2.0  # the sidestep's word twice as loud as the turn's
    asked /= np.linalg.norm(asked)
    assert reader.class_weights(["a", "a", "a", "b"], 0.5) == pytest.approx(np.array([1, 1, 1, 3 ** 0.5]) * 4 / (3 + 3 ** 0.5))
    assert reader.class_weights(["a", "b"], 0.0) == pytest.approx([1, 1])

    chosen = reader.BALANCE

    def read(balance):
        monkeypatch.setattr(reader, "BALANCE", balance)
        return PromptReader(*reader.build(meta, np.array(emb, np.float32))).read(asked).content

    assert read(0.0) == "walk-turn-left", "unweighted, the common content wins what the words lean away from"
    assert read(chosen) == "walk-left"


def test_the_side_a_prompt_names_is_taken_from_its_words_not_from_the_sentence_encoder():
    assert named_side("a man steps sideways towards his left") == "left"
    assert named_side("somebody shuffles sideways rightwards") == "right"
    assert named_side("Raise the RIGHT hand") == "right"
    assert named_side("walk-turn-left") == "left"
    assert named_side("he turns left, then right") == "", "both sides: the words do not decide"
    assert named_side("she waves right away, all right") == "", "idioms name no side"
    assert named_side("a person walks forward") == ""
    # an encoder that hears every sidestep as one to the right (the shipped reader did, for some wordings)
    contents = ["walk", "walk-left", "walk-right", "wave-left-hand"]
    arrays = dict(content_w=np.zeros((4, 384), np.float32), content_b=np.array([0.0, 1.0, 3.0, 0.5], np.float32),
                  content_classes=np.array(contents), style_w=np.zeros((1, 384), np.float32),
                  style_b=np.zeros(1, np.float32), style_classes=np.array(["normal"]),
                  bank=np.eye(4, 384, dtype=np.float32), bank_content=np.arange(4), bank_style=np.zeros(4, int))
    r = PromptReader(arrays, [f"sentence {c}" for c in contents])
    e = np.eye(1, 384, 5, dtype=np.float32)[0]
    assert r.read(e).content == "walk-right", "without the words, the encoder's side"
    assert r.read(e, "a man steps sideways towards his left").content == "walk-left"
    assert r.read(e, "a man steps sideways towards his left").sentence == "sentence walk-left"
    assert r.read(e, "a man steps sideways to the right").content == "walk-right"
    assert r.read(e, "a man steps sideways").content == "walk-right", "no side named: unchanged"
    # a sided content without a mirror among the contents is not read for the other side's prompt
    arrays["content_b"] = np.array([0.0, 0.0, 0.0, 3.0], np.float32)
    assert PromptReader(arrays, r.sentences).read(e, "waves the right hand").content != "wave-left-hand"


def test_a_prompt_that_names_sideways_motion_is_not_read_as_a_turning_walk():
    assert names_sideways("moving left without turning, someone walks sideways")
    assert names_sideways("a woman crab-walks to her left") and names_sideways("he sidesteps right")
    assert not names_sideways("a person walks and turns left") and not names_sideways("she steps aside")
    contents = ["walk", "walk-left", "walk-right", "walk-turn-left", "walk-turn-right"]
    arrays = dict(content_w=np.zeros((5, 384), np.float32), content_b=np.array([0.0, 1.0, 1.0, 2.0, 0.0], np.float32),
                  content_classes=np.array(contents), style_w=np.zeros((1, 384), np.float32),
                  style_b=np.zeros(1, np.float32), style_classes=np.array(["normal"]),
                  bank=np.eye(5, 384, dtype=np.float32), bank_content=np.arange(5), bank_style=np.zeros(5, int))
    r = PromptReader(arrays, [f"sentence {c}" for c in contents])
    e = np.eye(1, 384, 7, dtype=np.float32)[0]
    assert r.read(e, "a person walks to the left").content == "walk-turn-left", "no sideways word: the classifier's"
    read = r.read(e, "a person walks sideways to the left")
    assert (read.content, read.sentence) == ("walk-left", "sentence walk-left")
    # the side still comes from the words: the left turn's share goes to the left sidestep, then to the right one
    assert r.read(e, "a person walks sideways to the right").content == "walk-right"


def test_a_content_offset_is_added_to_the_sentence_a_prompt_is_read_as_and_to_nothing_else():
    contents = ["free", "walk", "walk-left"]
    arrays = dict(content_w=np.zeros((3, 384), np.float32), content_b=np.array([0.0, 0.0, 2.0], np.float32),
                  content_classes=np.array(contents), style_w=np.zeros((1, 384), np.float32),
                  style_b=np.zeros(1, np.float32), style_classes=np.array(["normal"]),
                  bank=np.eye(2, 384, 1, dtype=np.float32), bank_content=np.array([1, 2]), bank_style=np.zeros(2, int))
    e = np.eye(1, 384, 7, dtype=np.float32)[0]
    plain = PromptReader(arrays, ["walks", "steps left"])
    assert np.array_equal(plain.read(e).embedding, arrays["bank"][1]), "no offsets shipped: the sentence as it is"
    shift = np.zeros((3, 384), np.float32)
    shift[2, 9] = 0.5
    shifted = PromptReader(dict(arrays, content_shift=shift.astype(np.float16)), ["walks", "steps left"])
    read = shifted.read(e)
    assert read.sentence == "steps left" and read.embedding[9] == 0.5 and read.embedding[2] == 1.0
    assert np.array_equal(arrays["bank"][1], np.eye(1, 384, 2, dtype=np.float32)[0]), "the bank is left as it was"
    assert shifted.read(e, offset=0.5).embedding[9] == 0.25 and shifted.read(e, offset=0).embedding[9] == 0
    arrays["content_b"] = np.array([3.0, 0.0, 0.0], np.float32)  # a caption: used as written, no offset
    shifted = PromptReader(dict(arrays, content_shift=shift + 1), ["walks", "steps left"])
    assert np.array_equal(shifted.read(e).embedding, e) and not np.any(shifted.read(np.zeros(384)).embedding)
    with pytest.raises(ValueError, match="content_shift"):
        PromptReader(dict(arrays, content_shift=shift[:2]), ["walks", "steps left"])


def test_a_content_offset_learned_on_the_frozen_model_lowers_that_contents_denoising_loss(tiny_dataset, tmp_path):
    from inference.generation.diffusion import Diffusion

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        folder = tmp_path / "m"
        Denoiser(ModelConfig(width=32, layers=2, heads=2, max_frames=64, window_frames=32, min_frames=10,
                             dropout=0.0)).save(folder)
        (folder / "reader_shifts.json").write_text("{}")  # a record left from earlier offsets
        reader.write(folder, tiny_dataset)
        assert not (folder / "reader_shifts.json").exists(), "a reader written without offsets claims none"
        weights = (folder / "model.safetensors").read_bytes()
        shifts = reader.learn_shifts(folder, tiny_dataset, steps=60, log=lambda s: None)
        r = PromptReader.load(folder)
        walk = r.contents.index("walk")
        assert shifts.shape == (len(r.contents), 384) and np.linalg.norm(shifts[walk]) > 0
        assert (folder / "model.safetensors").read_bytes() == weights, "the weights stay as they were"

        model = Denoiser.load(folder)
        meta, rot, root, emb = bd.load(tiny_dataset)
        sampler = train.WindowSampler(meta, np.asarray(rot), np.asarray(root), torch.from_numpy(emb), "train", 7)
        diffusion = Diffusion(model.config.diffusion_steps)

        def loss(offset):
            torch.manual_seed(1)
            sampler.rng = np.random.default_rng(1)
            total = 0.0
            with torch.no_grad():
                for _ in range(8):
                    q, rr, valid, text = sampler.batch(8, 40)
                    x0 = (rep.encode(q, rr, 20.0) - model.mean) / model.std
                    t = train.draw_steps(8, diffusion.steps)
                    total += float(train.losses(model, diffusion, x0, t, text + torch.as_tensor(offset), x0,
                                                torch.zeros_like(x0), valid, model.mean, model.std, 20.0)["total"])
            return total / 8

        with_offset, without = loss(shifts[walk]), loss(np.zeros(384, np.float32))
        assert with_offset < 0.97 * without, (with_offset, without)
    finally:
        torch.set_num_threads(n)


def test_a_walk_back_prompt_is_read_as_a_forward_walk_of_its_style_to_play_backwards():
    contents = ["bow", "walk", "walk-back"]
    sentences = ["walks", "walks sadly", "walks back sadly", "bows sadly"]
    arrays = dict(content_w=np.zeros((3, 384), np.float32), content_b=np.array([0.0, 0.0, 2.0], np.float32),
                  content_classes=np.array(contents), style_w=np.zeros((2, 384), np.float32),
                  style_b=np.array([2.0, 0.0], np.float32), style_classes=np.array(["normal", "sad"]),
                  bank=np.eye(4, 384, dtype=np.float32), bank_content=np.array([1, 1, 2, 0]),
                  bank_style=np.array([0, 1, 1, 1]))
    e = np.eye(1, 384, 9, dtype=np.float32)[0]
    read = PromptReader(arrays, sentences).read(e)
    assert (read.content, read.sentence, read.backwards) == ("walk-back", "walks", True)
    # a backward walk only when a word of the prompt moves it backwards ("a woman walks down the street"
    # had been read as one and played backwards)
    for prompt, back in [("a woman walks down the street", False), ("she walks backwards", True),
                         ("he retreats slowly", True), ("a person reverses a few steps", True),
                         ("the man backs up", True), ("a man waves", False)]:
        assert names_backwards(prompt) == back, prompt
        read = PromptReader(arrays, sentences).read(e, prompt)
        assert (read.content, read.backwards) == (("walk-back", True) if back else ("walk", False)), prompt
    arrays["style_b"] = np.array([0.0, 2.0], np.float32)
    read = PromptReader(arrays, sentences).read(e)
    assert (read.sentence, read.backwards) == ("walks sadly", True), "the style named is kept"
    # a content never performed in the style named (or plainly): its closest sentence of any style, not
    # the prompt as written (which had come out as another content 14 % of the time)
    arrays["content_b"], arrays["style_b"] = np.array([2.0, 0.0, 0.0], np.float32), np.array([2.0, 0.0], np.float32)
    e_bow = np.eye(1, 384, 3, dtype=np.float32)[0] + e
    read = PromptReader(arrays, sentences).read(e_bow)
    assert (read.content, read.sentence, read.backwards) == ("bow", "bows sadly", False)
    arrays["content_b"] = np.array([0.0, 2.0, 0.0], np.float32)
    arrays["style_w"], arrays["style_b"] = np.zeros((3, 384), np.float32), np.array([0.0, 0.0, 3.0], np.float32)
    arrays["style_classes"] = np.array(["normal", "sad", "happy"])
    read = PromptReader(arrays, sentences).read(np.eye(1, 384, 1, dtype=np.float32)[0] + e)
    assert (read.content, read.sentence) == ("walk", "walks sadly"), "happy named, never walked happily"
