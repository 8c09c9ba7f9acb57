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
