"""A learned style starts from the style word the shipped model already knows for the clips."""
import pytest
import torch

from inference.body.bvh import read_bvh
from inference.generation import learner, style_words
from inference.generation.generate import Generator
from inference.retargeting.retarget import bvh_to_canonical
from training import data

# held-out (test-split) takes, three contents each
TAKES = {
    "elderly": ("dataset-2_walk_elderly_008", "dataset-2_raise-up-both-hands_elderly_028",
                "dataset-2_raise-up-left-hand_elderly_006"),
    "feminine": ("dataset-2_walk_feminine_002", "dataset-1_walk-back_feminine_001",
                 "dataset-2_raise-up-both-hands_feminine_005"),
}


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Generator(None, "cpu")


def _clips(names):
    out = []
    for name in names:
        path = data.bandai_file(name + ".bvh")
        if path is None:
            pytest.skip("Bandai-Namco data (../shared/data) is not on this machine")
        out.append(bvh_to_canonical(read_bvh(path)))
    return out


@pytest.mark.parametrize("style", sorted(TAKES))
def test_clips_of_a_style_the_model_knows_are_read_as_that_style(shipped, style):
    m, diffusion = shipped.model, shipped.diffusion
    feats = learner._features(_clips(TAKES[style]), shipped.fps)
    texts = learner.caption(m, diffusion, feats)
    assert learner.likeliest_word(m, diffusion, feats, texts) == style


def test_a_style_words_direction_moves_the_condition_and_is_the_same_for_every_content(shipped):
    m = shipped.model
    d = style_words.direction(m, "elderly", learner.PRIOR_PROMPTS)
    assert d.shape == (m.config.width,) and float(d.norm()) > 0.1
    walks = style_words.direction(m, "elderly", learner.PRIOR_PROMPTS[:2])
    waves = style_words.direction(m, "elderly", learner.PRIOR_PROMPTS[10:12])
    other = style_words.direction(m, "youthful", learner.PRIOR_PROMPTS)
    cos = torch.nn.functional.cosine_similarity
    assert cos(walks, waves, dim=0) > cos(d, other, dim=0), "a style word means more the style than the content"


def test_shipped_presets_are_the_style_word_mixtures_their_cards_name(shipped):
    """A preset's shift is written back as the mixture of words it was learned as, so the mixture can
    be said of each prompt (`style_words.said_of`)."""
    from inference.generation.style import StyleLibrary, read_preset

    basis = style_words.basis(shipped.model)
    presets = StyleLibrary(None).presets()
    assert len(presets) >= 4
    for preset in presets:
        adapter, card = read_preset(preset.path, shipped.folder.name, shipped.version)
        weights = style_words.mixture(adapter.shift, basis)
        assert weights is not None, preset.name
        named = card.extra["style_words"]
        for word, w in zip(style_words.STYLE_WORDS, weights.tolist()):
            assert abs(w - named.get(word, 0.0)) < 0.011, (preset.name, word, w, named)
    assert style_words.mixture(torch.randn(shipped.model.config.width), basis) is None, "a random shift is no mixture"


def test_a_word_said_of_a_sentence_is_that_sentence_with_the_words_adverbs(shipped):
    m = shipped.model
    sentence = "a person bows"
    one = torch.zeros(len(style_words.STYLE_WORDS))
    one[list(style_words.STYLE_WORDS).index("elderly")] = 1.0
    from inference.generation.text import encode

    said = style_words.said_of(m, one, sentence)
    plain = m.text_proj(torch.as_tensor(encode([sentence])))[0]
    styled = m.text_proj(torch.as_tensor(encode(style_words.sentences([sentence], "elderly")))).mean(0)
    assert torch.allclose(plain + said, styled, atol=1e-5)
    averaged = style_words.direction(m, "elderly", learner.PRIOR_PROMPTS)
    assert not torch.allclose(said, averaged, atol=1e-2), "said of the sentence, not of everyday prompts"


def test_generation_says_each_style_of_the_prompt_and_leaves_the_preset_alone(shipped, monkeypatch):
    from inference.generation import generate as generate_module
    from inference.generation import lora
    from inference.generation.style import StyleLibrary, read_preset

    adapter, _ = read_preset(StyleLibrary(None).find("elderly").path, shipped.folder.name, shipped.version)
    own = adapter.shift.clone()
    foreign = lora.Adapter("foreign", 1, 1.0, {}, torch.randn(shipped.model.config.width))
    seen = []
    real = lora.applied

    def spy(model, adapters):
        seen.append({a.name: a.shift.clone() for a, _ in adapters})
        return real(model, adapters)

    monkeypatch.setattr(generate_module.lora, "applied", spy)
    said = {}
    for prompt in ("a person bows", "a person walks forward"):
        seen.clear()
        res = shipped.generate(prompt, num_frames=40, steps=2, seed=0, adapters=((adapter, 1.0), (foreign, 0.5)))
        assert res.read_as, "the prompt is read as a training sentence"
        basis = style_words.basis(shipped.model)
        expected = style_words.said_of(shipped.model, style_words.mixture(own, basis), res.read_as)
        assert torch.allclose(seen[0]["elderly"], expected, atol=1e-5)
        assert torch.equal(seen[0]["foreign"], foreign.shift), "a shift that is no words mixture is used as it is"
        said[prompt] = seen[0]["elderly"]
    assert not torch.allclose(said["a person bows"], said["a person walks forward"], atol=1e-3)
    assert torch.equal(adapter.shift, own), "the cached preset is never changed"
