"""The style words the base model was trained with, and the direction each one moves its condition.

A learned style starts from the word the base model finds likeliest for the clips (`learner`): its
condition shift begins as the shift that word makes in everyday prompts, so a style the model already
knows by name is found in a few steps, and a new one starts from its nearest known neighbour.
The training sentences use the same adverbs (`training/build_dataset.py`).
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
