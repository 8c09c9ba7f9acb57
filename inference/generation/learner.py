"""Learn a style adapter from a few clips.

A style is first said in the base model's own words. The base model was trained with style words
("like an elderly person", "wearily", ...; `style_words`): each moves its condition vector in a
direction, averaged here over everyday prompts so that it carries how a motion is done and never
what is done. The adapter's condition shift (`lora.Adapter.shift`) is a mixture of those directions
(weights kept at or above zero), started at the word under which the base model denoises the clips
best and fitted to the clips (textual inversion inside the span of known style words). Sampling
guides the shift like a word (`sampler.Guided`). A style the model knows by name is found at once; a
new one gets the nearest mixture.

With `LearnRequest.detail`, low-rank layers on every transformer block's attention and feed-forward
layers also learn what words cannot say, beside *prior* clips the base model generates for everyday
prompts (prior preservation, as in LoRA-MDM, "Dance Like a Chicken"). The base weights are never
changed (training runs on a private copy). Progress after every step; cancel raises `Cancelled`
before anything is written.
"""
from __future__ import annotations

import copy
import math
import platform
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import lora
from . import representation as rep
from . import style_words
from .diffusion import Cancelled, Progress
from ..body.motion import MotionClip
from .style import StyleCard, StyleError, valid_name

MIN_CLIPS = 3
MIN_SECONDS = 10.0
"""Least motion, in total, a style is learned from."""
MIN_CLIP_SECONDS = 1.0
MAX_CLIPS = 64

DEFAULT_STEPS = 300
DEFAULT_RANK = 8
WINDOW = 60
"""Frames per training window (3 s at 20 fps)."""
CAPTION_STEPS = (700, 800, 900, 950)
CAPTION_DRAWS = 2
"""Diffusion steps, and noise draws at each, at which `caption` compares the prompts."""
SHIFT_FIRST_STEPS = 100
"""Steps at the start of learning in which only the condition shift learns (at most a third)."""
MIX_LR = 1e-2
"""Learning rate of the style words' mixture weights (the shift; kept at or above zero)."""
LOW_RANK_LR = 5e-4
"""Learning rate of the low-rank layers (`LearnRequest.detail`)."""
STYLE_TEXT_DROP = 0.25
"""Share of style windows trained without words (the style's shift stays)."""

PRIOR_PROMPTS = (
    "a person walks forward", "a person runs forward", "a person walks backward", "a person walks to the left",
    "a person walks to the right", "a person walks and turns left", "a person walks and turns right",
    "a person raises the right hand", "a person raises the left hand", "a person raises both hands",
    "a person waves with the right hand", "a person waves with both hands", "a person bows",
    "a person waves goodbye", "a person dashes forward", "a person waves with the left hand",
)
"""Everyday prompts (no style words) whose base-model motion keeps the prior while learning, and
the candidates that caption a style clip when it comes without words."""


@dataclass(frozen=True)
class LearnRequest:
    """A style to learn: its name, its clips, and how hard to train."""

    name: str
    """The new preset's name."""
    clips: tuple
    """`MotionClip`s on the canonical skeleton, all in the same style."""
    texts: tuple = ()
    """Optionally, per clip, what it shows in plain words without the style ("a person walks forward");
    empty: each clip is captioned with the everyday prompt the base model finds likeliest."""
    rank: int = DEFAULT_RANK
    steps: int = DEFAULT_STEPS
    prior_weight: float = 1.0
    """Weight of the prior clips' loss against the style clips' (0 = no prior preservation)."""
    prior_clips: int = 16
    shift: bool = True
    """Learn the style's shift of the condition vector (`lora.Adapter.shift`): a mixture of the style
    words the base model was trained with, started at the likeliest for the clips and fitted to them."""
    start: str = ""
    """A style word to start from (a key of `style_words.STYLE_WORDS`), when the clips are known to be
    in that style; empty: the word the base model finds likeliest for them."""
    detail: bool = False
    """Also train low-rank layers (rank `rank`, with prior preservation) for what no style word says.
    Off by default: learned from five clips of two contents, they carried the clips' content into
    other prompts (validation style bench: content 0.77 of the base model's against 0.82 without,
    style recognised 0.81 against 0.82)."""
    seed: int = 0
    description: str = ""
    data: str = ""
    """What the clips are (for the card); filled in from the clips when empty."""
    licence: str = ""

    def __post_init__(self):
        object.__setattr__(self, "clips", tuple(self.clips))
        object.__setattr__(self, "texts", tuple(self.texts))
        try:
            valid_name(self.name)
        except StyleError as exc:
            raise StyleError(str(exc)) from None
        if not self.clips:
            raise StyleError("Select the actions to learn the style from (at least "
                             f"{MIN_CLIPS}, {MIN_SECONDS:g} s in total).")
        if len(self.clips) < MIN_CLIPS:
            raise StyleError(f"A style needs at least {MIN_CLIPS} clips; got {len(self.clips)}. Select more actions.")
        if len(self.clips) > MAX_CLIPS:
            raise StyleError(f"At most {MAX_CLIPS} clips can be learned from at once; got {len(self.clips)}.")
        short = [i for i, c in enumerate(self.clips) if c.num_frames / c.fps < MIN_CLIP_SECONDS]
        if short:
            raise StyleError(f"Clip {short[0] + 1} is shorter than {MIN_CLIP_SECONDS:g} s; every clip needs at "
                             "least that much motion.")
        total = sum(c.num_frames / c.fps for c in self.clips)
        if total < MIN_SECONDS:
            raise StyleError(f"The clips hold {total:.1f} s of motion; a style needs at least {MIN_SECONDS:g} s. "
                             "Select more or longer actions.")
        if self.texts and len(self.texts) != len(self.clips):
            raise StyleError("Give one description per clip, or none.")
        if not 1 <= self.rank <= 64:
            raise StyleError(f"Rank must be between 1 and 64; got {self.rank}.")
        if not 1 <= self.steps <= 20000:
            raise StyleError(f"Steps must be between 1 and 20000; got {self.steps}.")
        if self.start and self.start not in style_words.STYLE_WORDS:
            raise StyleError(f"Unknown style word '{self.start}'; known: {', '.join(style_words.STYLE_WORDS)}.")
        if not (self.shift or self.detail):
            raise StyleError("Nothing to learn: turn on the style's shift or its details (low-rank layers).")
        if not 0.0 <= self.prior_weight <= 10.0:
            raise StyleError(f"Prior weight must be between 0 and 10; got {self.prior_weight:g}.")

    @property
    def seconds(self) -> float:
        return sum(c.num_frames / c.fps for c in self.clips)


def _features(clips: list[MotionClip], fps: float) -> list[torch.Tensor]:
    out = []
    for c in clips:
        if abs(c.fps - fps) > 1e-6:
            c = c.downsample(fps)  # every frame alike, as the training data (no tremor at the model's rate)
        q = torch.as_tensor(c.rotations, dtype=torch.float32)[None]
        r = torch.as_tensor(c.root_translation, dtype=torch.float32)[None]
        out.append(rep.encode(q, r, fps)[0])
    return out


def _windows(feats: list[torch.Tensor], size: int, rng: random.Random, length: int, fps: float):
    """(size, length, F) crops, re-canonicalised to their first frame, and their frame masks."""
    x = torch.zeros(size, length, rep.NUM_FEATURES)
    valid = torch.zeros(size, length, dtype=torch.bool)
    idx = []
    for b in range(size):
        i = rng.randrange(len(feats))
        f = feats[i]
        n = min(length, f.shape[0])
        s = rng.randrange(f.shape[0] - n + 1)
        w = f[s:s + n]
        if s:  # crop starts elsewhere: move it back to the canonical frame
            q, root, _ = rep.decode(w[None])
            w = rep.encode(q, root, fps)[0]
        x[b, :n], x[b, n:] = w, w[n - 1]
        valid[b, :n] = True
        idx.append(i)
    return x, valid, idx


def _loss(pred, x0, valid):
    col = torch.ones(x0.shape[-1])
    col[rep.ROOT] = 4.0
    w = valid.float()[..., None] * col
    mse = (((pred - x0) ** 2) * w).sum() / w.sum()
    w1 = (valid[:, 1:] & valid[:, :-1]).float()[..., None] * col
    d = (pred[:, 1:] - pred[:, :-1]) - (x0[:, 1:] - x0[:, :-1])
    return mse + ((d ** 2) * w1).sum() / w1.sum().clamp_min(1)


@torch.no_grad()
def caption(model, diffusion, feats: list[torch.Tensor], prompts=PRIOR_PROMPTS, seed: int = 0) -> list[str]:
    """Each clip's likeliest everyday prompt under the base model (lowest denoising error).

    Read at high noise (`CAPTION_STEPS`), where what the motion is matters more than its details: on
    60 test-split takes of the prompts' contents, 0.83 are read right there, 0.45 at steps 200-600."""
    from .text import encode

    emb = torch.as_tensor(encode(list(prompts)))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for f in feats:
        x0 = ((f[:min(WINDOW * 2, model.config.max_frames)] - model.mean) / model.std)[None]
        err = torch.zeros(len(prompts))
        for t in torch.tensor(CAPTION_STEPS).repeat_interleave(CAPTION_DRAWS):
            noise = torch.randn(x0.shape, generator=gen)
            xt = diffusion.q_sample(x0, t[None], noise).expand(len(prompts), -1, -1)
            z = torch.zeros_like(xt)
            pred = model(xt, t.repeat(len(prompts)), emb, z, z)
            err += ((pred - x0) ** 2).mean(dim=(1, 2))
        out.append(prompts[int(err.argmin())])
    return out


@torch.no_grad()
def likeliest_word(model, diffusion, feats: list[torch.Tensor], texts: list[str], seed: int = 0) -> str:
    """The style word (`style_words.STYLE_WORDS`) under which the base model denoises the clips best,
    each clip with its own caption and the word's adverbs appended; read at `CAPTION_STEPS` like
    `caption` (on the six styles of the validation split's style bench it names all six)."""
    from .style_words import STYLE_WORDS, sentences
    from .text import encode

    names = list(STYLE_WORDS)
    gen = torch.Generator().manual_seed(seed)
    err = torch.zeros(len(names))
    for f, text in zip(feats, texts):
        per = [sentences([text], n) for n in names]
        emb = torch.as_tensor(encode([s for group in per for s in group]))
        owner = torch.tensor([k for k, group in enumerate(per) for _ in group])
        x0 = ((f[:min(WINDOW * 2, model.config.max_frames)] - model.mean) / model.std)[None]
        for t in torch.tensor(CAPTION_STEPS).repeat_interleave(CAPTION_DRAWS):
            noise = torch.randn(x0.shape, generator=gen)
            xt = diffusion.q_sample(x0, t[None], noise).expand(len(emb), -1, -1)
            z = torch.zeros_like(xt)
            e = ((model(xt, t.repeat(len(emb)), emb, z, z) - x0) ** 2).mean(dim=(1, 2))
            err += torch.zeros(len(names)).index_add_(0, owner, e) / torch.bincount(owner, minlength=len(names))
    return names[int(err.argmin())]


def learn(generator, request: LearnRequest,
          callback: Callable[[Progress], bool | None] | None = None) -> tuple[lora.Adapter, StyleCard]:
    """Train an adapter for `request` on a private copy of the generator's model.

    callback(Progress) after the prior clips and every step; returning True raises `Cancelled`
    (nothing is returned or written). Returns the adapter and its card (not saved: see
    `style.StyleLibrary.save`)."""
    from .text import encode

    t0 = time.perf_counter()
    fps = generator.fps
    rng = random.Random(request.seed)
    # the prior clips keep the low-rank layers from learning the clips' content; the shift alone
    # cannot learn content (it is a mixture of style words), so without them no prior is needed
    n_prior = request.prior_clips if request.prior_weight > 0 and request.detail else 0
    total = n_prior + request.steps

    def report(step):
        if callback is not None and callback(Progress(step, total)):
            raise Cancelled()

    # Prior: the base model's own motion for everyday prompts (before any adapter exists).
    prior = []
    for k in range(n_prior):
        res = generator.generate(PRIOR_PROMPTS[k % len(PRIOR_PROMPTS)], num_frames=WINDOW, seed=request.seed + k,
                                 foot_lock=False)
        prior.append(res.clip)
        report(k + 1)

    with generator._lock:  # a private copy: the shared model is never changed or held while learning
        model = copy.deepcopy(generator.model).to("cpu").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    diffusion = generator.diffusion
    mean, std = model.mean, model.std
    style_feats = _features(list(request.clips), fps)
    texts = list(request.texts) or caption(model, diffusion, style_feats, seed=request.seed)
    style_emb = torch.as_tensor(encode(texts))
    prior_feats = _features(prior, fps)
    prior_emb = torch.as_tensor(encode([PRIOR_PROMPTS[k % len(PRIOR_PROMPTS)] for k in range(n_prior)])) \
        if n_prior else None

    adapter = lora.create(model, valid_name(request.name), request.rank, seed=request.seed)
    if not request.detail:
        adapter.weights = {}
    word, mix, basis = "", None, None
    if request.shift:
        # The shift is a mixture of the style words' directions (each averaged over everyday prompts,
        # so it says how, never what), started at the word the base model finds likeliest for the clips.
        names = list(style_words.STYLE_WORDS)
        word = request.start or likeliest_word(model, diffusion, style_feats, texts, seed=request.seed)
        basis = style_words.basis(model)
        mix = torch.zeros(len(names))
        mix[names.index(word)] = 1.0
        mix.requires_grad_(True)
        adapter.shift = (mix @ basis).detach()
    low_rank = [t for pair in adapter.weights.values() for t in pair]
    for t in low_rank:
        t.requires_grad_(True)
    # With details: first the shift alone (the low-rank layers still zero), so the style is said in
    # the model's own words before the layers learn what words cannot say; then both.
    first = min(SHIFT_FIRST_STEPS, request.steps // 3) if mix is not None and low_rank else 0
    rest = max(1, request.steps - first)
    groups, lambdas = [], []
    if low_rank:
        groups.append({"params": low_rank, "lr": LOW_RANK_LR})
        lambdas.append(lambda s: 0.0 if s < first else
                       min(1.0, (s - first + 1) / 20) * 0.5 * (1 + math.cos(math.pi * (s - first) / rest)))
    if mix is not None:
        groups.append({"params": [mix], "lr": MIX_LR})
        lambdas.append(lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * s / request.steps)))
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas)
    gen = torch.Generator().manual_seed(request.seed)
    batch = 8
    try:
        for step in range(request.steps):
            x, valid, idx = _windows(style_feats, batch, rng, WINDOW, fps)
            x = (x - mean) / std
            text = style_emb[idx]
            # a quarter of the style windows without words: the style alone (no prompt) is the style too
            drop = torch.rand(batch, generator=gen) < STYLE_TEXT_DROP
            text = torch.where(drop[:, None], torch.zeros_like(text), text)
            t = torch.randint(0, diffusion.steps, (batch,), generator=gen)
            noise = torch.randn(x.shape, generator=gen)
            z = torch.zeros_like(x)
            if mix is not None:
                adapter.shift = mix @ basis
            lora.attach(model, adapter, 1.0)  # the style clips with the style's shift
            loss = _loss(model(diffusion.q_sample(x, t, noise), t, text, z, z, valid), x, valid)
            if n_prior and step >= first:
                lora.attach(model, adapter, 1.0, shift=0.0)  # the prior without it
                px, pvalid, pidx = _windows(prior_feats, batch, rng, WINDOW, fps)
                px = (px - mean) / std
                pt = torch.randint(0, diffusion.steps, (batch,), generator=gen)
                pn = torch.randn(px.shape, generator=gen)
                pz = torch.zeros_like(px)
                pred = model(diffusion.q_sample(px, pt, pn), pt, prior_emb[pidx], pz, pz, pvalid)
                loss = loss + request.prior_weight * _loss(pred, px, pvalid)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if mix is not None:  # a style is made of known styles, none of them taken away
                with torch.no_grad():
                    mix.clamp_(min=0.0)
            report(n_prior + step + 1)
    finally:
        lora.detach(model, adapter.name)
        if mix is not None:
            adapter.shift = (mix @ basis).detach()
    for t in adapter.parameters():
        t.requires_grad_(False)
    seconds = time.perf_counter() - t0
    data = request.data or (f"{len(request.clips)} clips, {request.seconds:.1f} s "
                            f"(read as: {', '.join(sorted(set(texts)))})")
    words = {}
    if mix is not None:
        words = {n: round(float(w), 3) for n, w in zip(style_words.STYLE_WORDS, mix.detach()) if abs(float(w)) >= 0.01}
    card = StyleCard(name=adapter.name, base_model=generator.folder.name, base_version=generator.version,
                     rank=request.rank if request.detail else 0, description=request.description, data=data,
                     licence=request.licence, steps=request.steps, seconds=round(seconds, 1),
                     hardware=f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
                     extra={"prior_weight": request.prior_weight, "prior_clips": n_prior, "captions": texts,
                            "shift": request.shift, "detail": request.detail, "start_word": word,
                            "style_words": words})
    return adapter, card


def learning_job(generator_factory, request: LearnRequest, library, overwrite: bool = False):
    """A `job.Job` that learns `request` and saves it into `library` (only when it finishes)."""
    from .job import Job

    if library.find(request.name) is not None and not overwrite:
        from .style import StyleExists

        raise StyleExists(f"A style named '{request.name.strip()}' already exists; choose another name or "
                          "confirm that it should be replaced.")

    def work(on_progress):
        adapter, card = learn(generator_factory(), request, on_progress)
        return library.save(adapter, card, overwrite=overwrite)

    return Job(work, "marionette-learn-style")
