"""The style words the base model was trained with, and the direction each one moves its condition.

A learned style starts from the word the base model finds likeliest for the clips (`learner`): its
condition shift begins as the shift that word makes in everyday prompts, so a style the model already
knows by name is found in a few steps, and a new one starts from its nearest known neighbour.
The training sentences use the same adverbs (`training/build_dataset.py`).

At generation a learned mixture is said of the prompt itself (`said_of`): the model learned each
adverb inside sentences, and what it does to "a person bows" is not quite what it does on average
(on the validation split's style bench: style recognised 0.722 -> 0.743, content kept 0.793 -> 0.835
of the base model's, style rising with strength 0.812 -> 0.806).
"""
from __future__ import annotations

import torch

STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "active": ("energetically", "actively", "in a lively way", "with lots of energy"),
    "elderly": ("like an elderly person", "in an elderly way", "like an old person"),
    "tired": ("tiredly", "wearily", "in an exhausted way", "as if exhausted"),
    "feminine": ("in a feminine way", "femininely", "with a feminine manner"),
    "masculine": ("in a masculine way", "with a masculine manner", "in a manly way"),
    "youthful": ("in a youthful way", "youthfully", "with youthful energy"),
    "childish": ("like a child", "childishly", "in a childlike way"),
    "happy": ("happily", "cheerfully", "in a happy mood"),
    "sad": ("sadly", "in a sad way", "gloomily"),
    "not-confident": ("timidly", "without confidence", "hesitantly", "shyly"),
    "musical": ("rhythmically", "in a musical way", "as if moving to music"),
    "angry": ("angrily", "in an angry way"),
    "proud": ("proudly", "in a proud way"),
    "giant": ("like a giant", "heavily like a giant"),
    "chimpira": ("like a thug", "in a thuggish way"),
}
"""Style label -> adverbs that say it (no neutral entry: a shift of zero is the neutral style)."""


def sentences(prompts, word: str) -> list[str]:
    """Every prompt with each of `word`'s adverbs appended."""
    return [f"{p} {a}" for p in prompts for a in STYLE_WORDS[word]]


@torch.no_grad()
def directions(model, words, prompts) -> torch.Tensor:
    """(len(words), width): how each word's adverbs move the model's condition vector, averaged over
    `prompts` (the plain prompts encoded once)."""
    from .text import encode

    plain = torch.as_tensor(encode(list(prompts)))
    w = model.text_proj.weight
    out = []
    for word in words:
        styled = torch.as_tensor(encode(sentences(prompts, word)))
        diff = styled - plain.repeat_interleave(len(STYLE_WORDS[word]), 0)
        out.append(diff.mean(0).to(w.device, w.dtype) @ w.T)
    return torch.stack(out).detach().clone()


def direction(model, word: str, prompts) -> torch.Tensor:
    """(width,) how `word`'s adverbs move the model's condition vector, averaged over `prompts`."""
    return directions(model, [word], prompts)[0]


def basis(model) -> torch.Tensor:
    """(len(STYLE_WORDS), width): every style word's direction averaged over the learner's everyday
    prompts, in `STYLE_WORDS` order: what a learned shift is a mixture of, both when the learner mixes
    it and when generation reads the mixture back (`mixture`)."""
    from .learner import PRIOR_PROMPTS

    return directions(model, list(STYLE_WORDS), PRIOR_PROMPTS)


MIXTURE_TOLERANCE = 1e-3
"""Largest share of a shift's length left over when it is written as a mixture of the style words'
directions (`mixture`); a shift further from their span is not a mixture of words."""


@torch.no_grad()
def mixture(shift: torch.Tensor, words_basis: torch.Tensor) -> torch.Tensor | None:
    """(words,) weights w with shift = w @ words_basis (`basis`), or None when `shift` is not such a
    mixture (a preset made another way)."""
    b = words_basis.detach().to(torch.float64).cpu()
    s = shift.detach().to(torch.float64).cpu()
    w = torch.linalg.lstsq(b.T, s[:, None]).solution[:, 0]
    if float((w @ b - s).norm()) > MIXTURE_TOLERANCE * max(float(s.norm()), 1e-12):
        return None
    return w.to(torch.float32)


@torch.no_grad()
def said_of(model, weights: torch.Tensor, sentence: str) -> torch.Tensor:
    """(width,) a mixture of style words said of one sentence: each word's adverbs appended to *this*
    sentence, instead of their move averaged over everyday prompts. `weights`: one per word of
    `STYLE_WORDS`, in order (as `mixture` gives them); words weighing nothing are not encoded."""
    used = [(word, float(x)) for word, x in zip(STYLE_WORDS, weights.tolist()) if abs(float(x)) > 1e-4]
    w = model.text_proj.weight
    out = torch.zeros(w.shape[0], device=w.device, dtype=w.dtype)
    if used:
        d = directions(model, [word for word, _ in used], [sentence])
        out = torch.as_tensor([x for _, x in used], device=w.device, dtype=w.dtype) @ d
    return out
