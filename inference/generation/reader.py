"""Reading a prompt as the model was taught to hear it.

The sentence encoder places "she walks backwards slowly" nearest to a training sentence that walks
forwards: its neighbourhoods follow the shared words (walk, slowly, she) more than the few that
decide the motion. The reader (built by `training.reader`, shipped as reader.npz + reader.json in the
model folder) names the content and the style a prompt asks for with two linear classifiers trained
on the training sentences' labels, and the prompt is then given to the model as the training sentence
of that content and style closest to it, which the model has learned to act out. A prompt about
something the labelled data does not cover (a CMU caption's kind of motion), or one the reader is
unsure of, is used as it is. A prompt that names a style its content was never performed in (no
training sentence says both; for the rarest contents, one take per style, that is every style whose
take is held out) is read as the content's closest sentence of any style, and so is one that names no
style for a content only ever performed in marked styles (every bow in the data is sad, elderly,
childish, ...): the sentence is shown to the animator, who can add the style as a preset. Used as
written, such prompts had come out as another content 14 % of the time and carried the style asked
for in 8 % (/tmp script, 60 such pairs).

The encoder hears "left" and "right" as nearly the same word ("a man steps sideways towards his left"
lands on a sentence that walks to the right), so the side is taken from the words: when the prompt
names one side only, a content of the other side counts for its mirror image (`named_side`). In the
same way a prompt is read as a backward walk only when a word of it moves backwards (back, backwards,
reverse, retreats, ...: every walk-back sentence of the data has one; `names_backwards`): "a woman
walks down the street" had been read as one, and played backwards. And a prompt with a word for
moving sideways (sideways, sidesteps, crab-walks: in the data only sidesteps have them) is not read as
a turning walk (`names_sideways`, `SIDEWAYS`).

Some contents the model acts out poorly from any of their sentences (asked to step sideways, it walks
forwards and turns). For those the reader ships a learned offset per content (`content_shift`, textual
inversion: learned on the frozen model's denoising loss over that content's training takes, kept only
where it made the dev prompts' motion read as the content more often); it is added to the sentence a
prompt is read as. Offsets of zero (or none shipped) leave the sentence as it is. An offset and a
style adapter do not yet compose: with the offset, an adapter's style was recognised on none of the
offset contents' prompts (it was on most without), so the offset fades out as styles are turned up
(`read(..., offset=1 - defaults.OFFSET_FADE x the styles' summed strength)`: all of it at 0, none from
half strength on).

One content the model cannot act out is another one played backwards. From its walk-back sentences
(8 training takes) it moved the pelvis backwards while the body barely stepped (for "the person
nervously steps backward" the feet travelled 0.36 times as far as the pelvis; real backward walks:
about 1), and none of the bench's walk-back paraphrases it was given came out as a walk back. Walking
backwards is, to the eye and in gait studies, nearly a forward walk run in reverse (the same stance and
swing, last frame first), and the training split has 20 times as many forward-walk frames (171 takes
against 8), in every style. So a prompt the reader names `walk-back` is read as the closest
forward-walk sentence of the same style with `Reading.backwards` set, and the generator plays that
walk backwards (`PLAYED_BACKWARDS`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import mirror_text, named_side, names_backwards, names_sideways

FREE = "free"
"""The reader's content for sentences outside the labelled contents: such prompts are used as written."""
NORMAL = "normal"
"""The style a prompt gets when it names none clearly."""
MIN_CONTENT = 0.3
"""Least probability of the likeliest content for a prompt to be read as a training sentence."""
MIN_STYLE = 0.5
"""Least probability of the likeliest style for it to be taken from the prompt (else `NORMAL`)."""
SIDEWAYS = {"walk-turn-left": "walk-left", "walk-turn-right": "walk-right"}
"""Content -> the content it counts for when the prompt names sideways motion (`text.names_sideways`)."""
PLAYED_BACKWARDS = {"walk-back": "walk"}
"""Content -> the content acted out, generated in reverse time, for it (see the module's text)."""


@dataclass(frozen=True)
class Reading:
    embedding: np.ndarray
    """(384,) the embedding to condition on: the chosen training sentence's (plus its content's learned
    offset), or the prompt's own."""
    sentence: str
    """The training sentence the prompt was read as; empty when it is used as written."""
    content: str
    """The content the reader names (`FREE` for motions outside the labelled contents)."""
    confidence: float
    """The reader's probability for that content."""
    backwards: bool = False
    """The sentence is of the content `PLAYED_BACKWARDS` names: generate it and play it in reverse."""


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


class PromptReader:
    def __init__(self, arrays: dict, sentences: list[str]):
        self.content_w, self.content_b = arrays["content_w"], arrays["content_b"]
        self.contents = [str(c) for c in arrays["content_classes"]]
        self.style_w, self.style_b = arrays["style_w"], arrays["style_b"]
        self.styles = [str(s) for s in arrays["style_classes"]]
        self.bank = arrays["bank"].astype(np.float32)
        self.bank_content, self.bank_style = arrays["bank_content"], arrays["bank_style"]
        self.sentences = sentences
        shift = arrays.get("content_shift")
        self.content_shift = (np.zeros((len(self.contents), self.bank.shape[1]), np.float32) if shift is None
                              else np.asarray(shift, np.float32))
        """(contents, 384) offset added to the sentence a prompt of that content is read as."""
        self._side = [named_side(c) for c in self.contents]
        # each sided content's mirror image among the contents (itself when it has none)
        self._mirror = np.array([self.contents.index(mirror_text(c)) if mirror_text(c) in self.contents else k
                                 for k, c in enumerate(self.contents)])
        # (content, the content it counts for) as indices, for the word rules in `read`
        self._backwards, self._sideways = ([(self.contents.index(a), self.contents.index(b)) for a, b in table.items()
                                            if a in self.contents and b in self.contents]
                                           for table in (PLAYED_BACKWARDS, SIDEWAYS))
        if not len(sentences) == len(self.bank) == len(self.bank_content) == len(self.bank_style):
            raise ValueError("reader.npz and reader.json disagree on the number of sentences")
        if self.content_shift.shape != (len(self.contents), self.bank.shape[1]):
            raise ValueError("reader.npz: content_shift must have one row per content")

    @classmethod
    def load(cls, folder: str | Path) -> "PromptReader | None":
        """The model folder's reader, or None when it has none (prompts are then used as written)."""
        npz, js = Path(folder) / "reader.npz", Path(folder) / "reader.json"
        if not (npz.is_file() and js.is_file()):
            return None
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files}
        return cls(arrays, json.loads(js.read_text()))

    def read(self, embedding: np.ndarray, text: str = "", offset: float = 1.0) -> Reading:
        """How the model should hear a prompt embedding (unit vector; a zero vector is no prompt).

        text: the prompt's words, when known: the side they name decides between mirror-image contents.
        offset: how much of the content's learned offset (`content_shift`) to add to the sentence.
        """
        e = np.asarray(embedding, np.float32)
        p = _softmax(self.content_w @ e + self.content_b)
        side = named_side(text)
        if side:  # a content of the other side counts for its mirror image
            other = np.array([s not in ("", side) for s in self._side])
            moved = np.zeros_like(p)
            np.add.at(moved, self._mirror[other], p[other])
            p = np.where(other, 0.0, p + moved)
        moved = []
        if text and not names_backwards(text):  # no word moves it backwards: a backward walk counts as a walk
            moved += self._backwards
        if text and names_sideways(text):  # a word moves it sideways: a turning walk counts as the sidestep
            moved += self._sideways
        for i, j in moved:
            p[j], p[i] = p[j] + p[i], 0.0
        k = int(p.argmax())
        content, confidence = self.contents[k], float(p[k])
        if content == FREE or confidence < MIN_CONTENT or not np.any(e):
            return Reading(e, "", content, confidence)
        q = _softmax(self.style_w @ e + self.style_b)
        s = int(q.argmax())
        if q[s] < MIN_STYLE and NORMAL in self.styles:
            s = self.styles.index(NORMAL)
        acted = PLAYED_BACKWARDS.get(content)
        acted = self.contents.index(acted) if acted in self.contents else k
        rows = np.flatnonzero((self.bank_content == acted) & (self.bank_style == s))
        if not len(rows):  # this content was never performed in that style: its closest sentence of any
            rows = np.flatnonzero(self.bank_content == acted)
        best = int(rows[np.argmax(self.bank[rows] @ e)])
        sentence = self.bank[best] + self.content_shift[acted] * float(offset)
        return Reading(sentence, self.sentences[best], content, confidence, backwards=acted != k)
