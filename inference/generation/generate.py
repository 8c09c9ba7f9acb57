"""Generate motion: text, known values and a mask in, a `MotionClip` on the canonical skeleton out.

One entry point serves every mode:
  - text to motion: no known values;
  - in-betweening: `keyframe_mask` over the keyed frames of a reference clip;
  - body-part editing: `joint_mask` for the joints to keep from the reference clip;
  - trajectory constraints: `trajectory_mask` for the root path (all or some frames).
Known values are expressed in the world frame of the reference clip; the result is in that frame too.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from . import defaults, lora
from . import representation as rep
from .constraints import POSE, joint_mask, keyframe_mask, trajectory_mask
from .diffusion import Diffusion
from .sampler import Cancelled, Guided, Progress, initial_noise, sample_ddim, step_noise
from .model import Denoiser, ModelError
from ..body.motion import MotionClip, MotionError
from ..body.skeleton import JOINT_NAMES

if TYPE_CHECKING:
    from .request import GenerationRequest, GenerationResult

__all__ = ["Generator", "Result", "Cancelled", "Progress", "default_model_dir", "keyframe_mask", "joint_mask",
           "trajectory_mask", "DEFAULT_STEPS", "DEFAULT_GUIDANCE"]

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
DEFAULT_MODEL = "marionette-base"
DEFAULT_STEPS = defaults.STEPS
DEFAULT_GUIDANCE = defaults.GUIDANCE


def default_model_dir() -> Path:
    return Path(os.environ.get("MARIONETTE_MODEL", ASSETS / DEFAULT_MODEL))


# ----------------------------------------------------------------------------------------- result
@dataclass
class Result:
    clip: MotionClip
    contacts: np.ndarray
    """(T, 4) foot contact probabilities: left ankle, left toe, right ankle, right toe."""
    seed: int
    nearest: list = field(default_factory=list)
    """[(training sentence, cosine similarity)], closest first; empty without a prompt or vocabulary."""
    read_as: str = ""
    """The training sentence the prompt was read as (`reader.PromptReader`); empty: used as written."""

    @property
    def familiar(self) -> bool:
        """False when the prompt is far from everything the model was trained on."""
        return not self.nearest or self.nearest[0][1] >= Generator.FAMILIAR


def _gpu() -> torch.device | None:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


def _device(name: str | None) -> torch.device:
    """AUTO (GPU when PyTorch has one), CPU, GPU (CUDA or Apple Metal), or a torch device string."""
    key = (name or "AUTO").upper()
    if key == "AUTO":
        return _gpu() or torch.device("cpu")
    if key == "GPU":
        dev = _gpu()
        if dev is None:
            raise MotionError("PyTorch sees no GPU (CUDA or Apple Metal) on this machine; choose CPU or Auto "
                              "in the add-on preferences.")
        return dev
    if key == "CPU":
        return torch.device("cpu")
    return torch.device(name)


DRAFT_START = 0.5
"""Where a draft's blended values are (see `Constraints.drafted`), the sampler starts from the
known values with the draft blended in, noised to this share of the schedule (SDEdit)."""
LEAD_IN = 2
"""Free frames made before a request whose first frame is keyed (and its second not), then dropped.
With nothing before it to say how the motion arrives at a key on the very first frame, the model
threw a fast-moving hand or foot on from it in a jerk over the next four frames (validation: 11 of
67 5-s windows keyed every second beat the real take's largest joint acceleration there, up to 0.22
against 0.05 m/frame^2 on a wave). Two free frames before it: 5 of 67, at most 0.12, and the
windows' error against slerp's 0.530 -> 0.535 (a second seed set: 0.534 without). Longer lead-ins
smooth the start a little more but move the later gaps further from the truth (5 frames: 0.552,
10: 0.582): the model was trained with keys on both ends of a window 70 % of the time."""
DRAFT_GUIDANCE = 5.0
"""Least text guidance for a draft (`generate(drafted=...)`): it is made from the prompt alone, and
the prompt is what it is for (at the default guidance, "runs" drafted a dash a third of the time)."""


class Generator:
    """A loaded model on one device. Thread-safe for one generation at a time."""

    _cache: dict[tuple[str, str], "Generator"] = {}
    _cache_lock = threading.Lock()

    def __init__(self, folder: str | Path | None = None, device: str | None = None):
        self.folder = Path(folder or default_model_dir())
        self.device = _device(device)
        self.model = Denoiser.load(self.folder, self.device)
        self.config = self.model.config
        self.fps = self.config.fps
        self.diffusion = Diffusion(self.config.diffusion_steps)
        self.smoothing = float(self.config.smoothing)
        self.eta = defaults.ETA
        """The sampler's stochasticity (`sampler.sample_ddim`): 0 deterministic DDIM, 1 ancestral."""
        self.drop_alternation = defaults.DROP_ALTERNATION
        """Whether the sampler drops the frame-rate alternation from its estimates (`sampler.sample_ddim`)."""
        self.step_power = defaults.STEP_POWER
        """How the sampler's steps crowd towards the noisy end (`diffusion.Diffusion.timesteps`; 1: evenly)."""
        self.style_guidance_factor = defaults.STYLE_GUIDANCE_FACTOR
        """Attached styles are guided at this multiple of the text guidance (`sampler.Guided`)."""
        self.noisy_content_from = defaults.NOISY_CONTENT_FROM
        """The diffusion step from which a prompt read with styles keeps its whole content offset."""
        self.unstyled_from = defaults.UNSTYLED_FROM
        """The diffusion step from which attached styles are left out (the motion's first outline)."""
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, folder=None, device=None) -> "Generator":
        """A cached generator per (folder, device), so repeated clicks do not reload the weights."""
        key = (str(Path(folder or default_model_dir()).resolve()), str(_device(device)))
        with cls._cache_lock:
            if key not in cls._cache:
                cls._cache[key] = cls(folder, device)
            return cls._cache[key]

    REGENERATE = 15
    """Frames at the end of each window that the next window makes again (of its 30-frame overlap)."""

    FAMILIAR = 0.55
    """Cosine similarity to the nearest training sentence below which a prompt counts as unfamiliar."""

    def nearest_known(self, text_embedding: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The training sentences closest to a prompt embedding, with cosine similarities (best first)."""
        vocab = self._vocabulary()
        if vocab is None:
            return []
        texts, emb = vocab
        sims = emb @ np.asarray(text_embedding, np.float32)
        best = np.argsort(-sims)[:k]
        return [(texts[i], float(sims[i])) for i in best]

    def reader(self):
        """The model folder's prompt reader (`reader.PromptReader`), or None when it ships none."""
        if not hasattr(self, "_reader"):
            from .reader import PromptReader

            self._reader = PromptReader.load(self.folder)
        return self._reader

    def _vocabulary(self):
        if not hasattr(self, "_vocab"):
            self._vocab = None
            tj, tn = self.folder / "vocabulary.json", self.folder / "vocabulary.npy"
            if tj.is_file() and tn.is_file():
                import json

                self._vocab = (json.loads(tj.read_text()), np.load(tn).astype(np.float32))
        return self._vocab

    @property
    def max_frames(self) -> int:
        return self.config.max_frames

    def generate(
        self,
        prompt: str = "",
        num_frames: int | None = None,
        seconds: float | None = None,
        seed: int = 0,
        steps: int = DEFAULT_STEPS,
        guidance: float = DEFAULT_GUIDANCE,
        known: MotionClip | None = None,
        mask: np.ndarray | None = None,
        callback: Callable[[Progress], bool | None] | None = None,
        text_embedding: np.ndarray | None = None,
        smoothing: float | None = None,
        foot_lock: bool | None = None,
        adapters: tuple = (),
        start: float = 0.0,
        drafted: np.ndarray | None = None,
        key_guidance: float = 1.0,
        read_prompt: bool = True,
        carry: bool = False,
        noisy_text_embedding: np.ndarray | None = None,
    ) -> Result:
        """Generate one clip at the model's frame rate.

        known: a reference clip at the model's frame rate with `num_frames` frames; mask: (T, 139) bool
        saying which of its values to keep. callback(Progress) -> True cancels (raises `Cancelled`).
        smoothing: temporal smoothing in frames (None: the model's default from its config.json).
        foot_lock: pin planted feet with leg IK (None: the model's default).
        adapters: ((lora.Adapter, strength), ...) applied for this call only (`style_adapters`).
        start: 0 samples from pure noise; above 0 (up to 1) the sampler starts from `known` itself,
        free values included (a draft motion), noised to this share of the diffusion schedule
        (SDEdit): the model keeps the draft's gist and makes it agree with the known values.
        drafted: (T, 139) weights, values first drafted from the prompt alone (same seed, no known
        values), then held like known ones (weight 1) or blended into the sampler's start
        (`constraints.Constraints.drafted`); the run takes up to twice the steps.
        key_guidance: guidance on the known values (`constraints.Constraints.key_guidance`); above 1
        each step also runs the model without them.
        read_prompt: give the model the prompt as the training sentence the model folder's reader reads
        it as (`reader.PromptReader`, named in `Result.read_as`); False: the prompt as written. Only
        when the prompt is given as text (not as `text_embedding`).
        carry: a drafted root path that ends before known motion does: that motion moves with the
        draft's end (True) or the draft returns to it (False; `constraints.Constraints.carry`).
        noisy_text_embedding: the condition at the sampler's noisy steps (from `noisy_content_from` up),
        `text_embedding` at the others; None: `text_embedding` throughout. A prompt read with styles
        attached sets it itself: the sentence with its whole content offset.
        """
        if num_frames is None:
            if known is not None:
                num_frames = known.num_frames
            else:
                num_frames = int(round((seconds or 4.0) * self.fps))
        num_frames = int(num_frames)
        if not 1 <= num_frames <= self.max_frames:
            raise MotionError(f"Length must be 1 to {self.max_frames} frames at {self.fps:g} fps "
                              f"({self.max_frames / self.fps:g} s); asked for {num_frames}.")
        if mask is not None and known is None:
            raise MotionError("A mask needs the known motion it refers to.")
        if known is not None:
            if abs(known.fps - self.fps) > 1e-6:
                known = known.resample(self.fps)
            if known.num_frames != num_frames:
                raise MotionError(f"The known motion has {known.num_frames} frames; expected {num_frames}.")
            if mask is None:
                mask = np.zeros((num_frames, rep.NUM_FEATURES), bool)
            if mask.shape != (num_frames, rep.NUM_FEATURES):
                raise MotionError(f"Mask must have shape ({num_frames}, {rep.NUM_FEATURES}); got {mask.shape}.")
        own, read_as, backwards = None, "", False  # the prompt's own embedding; the sentence it was read as
        if text_embedding is None:
            from .text import encode

            text_embedding = own = encode(prompt or "")[0]
            reader = self.reader() if read_prompt and prompt and prompt.strip() else None
            if reader is not None:
                # the content offsets and the styles do not compose: the offset fades out as styles turn up
                turned_up = sum(abs(s) for _, s in adapters)
                offset = max(0.0, 1.0 - defaults.OFFSET_FADE * turned_up)
                reading = reader.read(own, prompt, offset=offset)
                text_embedding, read_as, backwards = reading.embedding, reading.sentence, reading.backwards
                if read_as and offset < 1.0:
                    # ...but not at the noisy steps, where what the motion is gets decided: there the
                    # sentence keeps its whole offset, and the styles say how it is done after
                    noisy_text_embedding = reader.read(own, prompt, offset=1.0).embedding
                if read_as and adapters:  # each style said of the sentence the prompt is read as
                    adapters = self.styles_said_of(adapters, read_as)

        # how familiar the prompt is: its own embedding's, not the sentence's it was read as
        nearest = self.nearest_known(text_embedding if own is None else own) if prompt and prompt.strip() else []

        def heard(res: Result) -> Result:
            """A nested run's result (it was given the read embedding), with what this run made of the prompt."""
            res.read_as, res.nearest = read_as, nearest
            return res

        # keys that travel backwards (the keyed root moves against the keyed pelvis's facing): the model
        # walks forwards far better than backwards, and a gap filled in reverse time is the same gap. A
        # request with drafts is drafted forwards (its carry is forward in time); the run that joins the
        # draft to the known motion comes back here without drafts and is decided then.
        keyed_back = (not backwards and known is not None and mask is not None
                      and (drafted is None or not np.any(drafted)) and travels_backwards(known, mask))
        if backwards or keyed_back:
            # read as another content played in reverse (`reader.PLAYED_BACKWARDS`), or keyed backwards:
            # the known values, mask and drafts are reversed in time, the motion made forwards, and the
            # result reversed back (a drafted path returns to the motion after it: carried, reversed
            # time would move the motion before it)
            def flip(a):
                return None if a is None else np.ascontiguousarray(np.asarray(a)[::-1])

            res = self.generate(prompt, num_frames, seed=seed, steps=steps, guidance=guidance,
                                known=None if known is None else known.reversed(), mask=flip(mask), callback=callback,
                                text_embedding=text_embedding, noisy_text_embedding=noisy_text_embedding,
                                smoothing=smoothing, foot_lock=foot_lock, adapters=adapters, start=start,
                                drafted=flip(drafted), key_guidance=key_guidance)
            clip = res.clip.reversed()
            root = clip.root_translation.copy()
            if mask is None or not mask[:, rep.ROOT].any():
                # nothing keys the path: the reversed motion starts where the forward one did
                root[:, :2] += res.clip.root_translation[0, :2] - root[0, :2]
            res.clip, res.contacts = MotionClip(clip.rotations, root, clip.fps), flip(res.contacts)
            if backwards:
                read_as = f"{read_as} (played backwards)"
            return heard(res)

        if drafted is not None and known is not None and np.asarray(drafted).any():
            from .constraints import apply_draft

            drafted = np.where(mask, 0.0, np.asarray(drafted, np.float64))

            def half(offset):
                return None if callback is None else (
                    lambda p: callback(Progress(offset * p.total + p.step, 2 * p.total)))

            # drafted over the drafted frames only, so that the prompt's motion starts where they do
            rows = np.flatnonzero(drafted.max(axis=1) > 0)
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            # known motion after a drafted root path: carried along with the path's end, or reached by it
            # (the draft made with the root's ground position and facing keyed on its first and last frame)
            meets = bool(drafted[:, rep.ROOT].max() > 0 and mask[hi:, 0:2].any())
            d_known = d_mask = None
            if meets and not carry:
                d_known = known.slice(lo, hi)
                d_mask = np.zeros((hi - lo, rep.NUM_FEATURES), bool)
                d_mask[np.ix_([0, hi - lo - 1], [0, 1, *range(rep.joint_feature_slices(0).start,
                                                               rep.joint_feature_slices(0).stop)])] = True
            part = self.generate(prompt, hi - lo, seed=seed, steps=steps, guidance=max(guidance, DRAFT_GUIDANCE),
                                 callback=half(0), text_embedding=text_embedding,
                                 noisy_text_embedding=noisy_text_embedding, smoothing=smoothing, foot_lock=False,
                                 adapters=adapters, known=d_known, mask=d_mask).clip
            q, r = known.rotations.copy(), known.root_translation.copy()
            q[lo:hi], r[lo:hi] = part.rotations, part.root_translation
            known = apply_draft(known, drafted, MotionClip(q, r, known.fps), carry=meets and carry)
            blended = ((drafted > 0) & (drafted < 1)).any()
            return heard(self.generate(prompt, num_frames, seed=seed, steps=steps, guidance=guidance, known=known,
                                       mask=mask | (drafted >= 1), callback=half(1), text_embedding=text_embedding,
                                       noisy_text_embedding=noisy_text_embedding, smoothing=smoothing,
                                       foot_lock=foot_lock, adapters=adapters,
                                       start=start or (DRAFT_START if blended else 0.0), key_guidance=key_guidance))
        lead = self._lead_in(num_frames, mask, start)
        if lead:
            # a key on the very first frame: the motion is made from a little before it (free frames,
            # dropped after), so that it passes through the key instead of leaving it with a jerk
            pad = np.concatenate([np.zeros(lead, int), np.arange(num_frames)])
            res = self.generate(prompt, num_frames + lead, seed=seed, steps=steps, guidance=guidance,
                                known=MotionClip(known.rotations[pad], known.root_translation[pad], known.fps),
                                mask=np.concatenate([np.zeros((lead, mask.shape[1]), bool), mask]),
                                callback=callback, text_embedding=text_embedding,
                                noisy_text_embedding=noisy_text_embedding, smoothing=smoothing, foot_lock=foot_lock,
                                adapters=adapters, key_guidance=key_guidance)
            res.clip = res.clip.slice(lead, lead + num_frames)
            res.contacts = res.contacts[lead:]
            return heard(res)
        shortest = min(int(getattr(self.config, "min_frames", 1)), self.config.window_frames, self.max_frames)
        if num_frames < shortest:
            # Shorter than any training window: generate the shortest one (the extra frames free,
            # after the requested ones) and keep the start.
            if known is not None:
                pad = np.arange(shortest).clip(max=num_frames - 1)
                known = MotionClip(known.rotations[pad], known.root_translation[pad], known.fps)
                mask = np.concatenate([mask, np.zeros((shortest - num_frames, mask.shape[1]), bool)])
            res = self.generate(prompt, shortest, seed=seed, steps=steps, guidance=guidance, known=known, mask=mask,
                                callback=callback, text_embedding=text_embedding,
                                noisy_text_embedding=noisy_text_embedding, smoothing=smoothing, foot_lock=foot_lock,
                                adapters=adapters, start=start, key_guidance=key_guidance)
            res.clip = res.clip.slice(0, num_frames)
            res.contacts = res.contacts[:num_frames]
            return heard(res)
        text = torch.as_tensor(np.asarray(text_embedding, np.float32), device=self.device)[None]
        noisy_text = None if noisy_text_embedding is None else \
            torch.as_tensor(np.asarray(noisy_text_embedding, np.float32), device=self.device)[None]
        windows = self.windows(num_frames)
        total = steps * len(windows)

        def window_callback(k):
            if callback is None:
                return None
            return lambda p: callback(Progress(k * steps + p.step, total))

        lock = self.config.foot_lock if foot_lock is None else foot_lock
        if len(windows) == 1:
            q, root, contacts = self._sample(text, known, mask, num_frames, seed, steps, guidance, window_callback(0),
                                             smoothing, adapters, start, key_guidance, noisy_text)
            return Result(self._finish(q, root, known, mask, lock), contacts, int(seed), nearest, read_as)
        # Longer than the model's training window: generate overlapping windows; each one continues
        # the previous by treating the overlap as known frames (the same in-painting as keyframes).
        q_all = np.tile(np.array([1.0, 0, 0, 0]), (num_frames, len(JOINT_NAMES), 1))
        root_all = np.zeros((num_frames, 3))
        contacts_all = np.zeros((num_frames, 4), np.float32)
        if known is not None:
            q_all[:], root_all[:] = known.rotations, known.root_translation
        user_mask = mask if mask is not None else np.zeros((num_frames, rep.NUM_FEATURES), bool)
        done = np.zeros(num_frames, bool)
        for k, (a, b) in enumerate(windows):
            m = user_mask[a:b].copy()
            context = done.copy()
            if k:
                # The previous window's last frames were made without the keys beyond it: they are
                # made again here, with those keys in view, so the windows join through them.
                end = windows[k - 1][1]
                context[max(a, end - self.REGENERATE):end] = False
            m[context[a:b], POSE] = True
            ref = MotionClip(q_all[a:b], root_all[a:b], self.fps)
            q, root, contacts = self._sample(text, ref, m, b - a, seed + k, steps, guidance, window_callback(k),
                                             smoothing, adapters, start, key_guidance, noisy_text)
            q_all[a:b], root_all[a:b], contacts_all[a:b] = q, root, contacts
            done[a:b] = True
        return Result(self._finish(q_all, root_all, known, mask, lock), contacts_all, int(seed), nearest, read_as)

    def run(self, request: "GenerationRequest",
            callback: Callable[[Progress], bool | None] | None = None) -> "GenerationResult":
        """Every variation of a request, one seed after another; callback gets the whole run's progress."""
        from .request import GenerationResult

        c = request.constraints
        known, mask = (c.known, c.mask) if c is not None else (None, None)
        drafted = c.drafted if c is not None else None
        seeds = request.seeds
        adapters = self.style_adapters(request.styles)
        takes = []
        for i, seed in enumerate(seeds):
            def on_step(p, i=i):
                return None if callback is None else callback(Progress(i * p.total + p.step, len(seeds) * p.total))

            takes.append(self.generate(request.prompt, seconds=request.seconds, seed=seed, steps=request.steps,
                                       guidance=request.guidance, known=known, mask=mask, callback=on_step,
                                       smoothing=request.post.smoothing, foot_lock=request.post.foot_lock,
                                       adapters=adapters, drafted=drafted,
                                       key_guidance=c.key_guidance if c is not None else 1.0,
                                       read_prompt=request.read_prompt, carry=c is not None and c.carry))
        lock = self.config.foot_lock if request.post.foot_lock is None else request.post.foot_lock
        smoothing = self.smoothing if request.post.smoothing is None else request.post.smoothing
        return GenerationResult(request, tuple(takes), self.folder.name, self.version, str(self.device), bool(lock),
                                float(smoothing))

    def style_adapters(self, styles) -> tuple:
        """((Adapter, strength), ...) for `request.Style`s: each preset read (and cached) from its file, or
        the shipped preset of its name; a StyleError names the style that cannot be used."""
        from .style import StyleError, StyleLibrary, read_preset

        out = []
        for s in styles:
            path = Path(s.path) if s.path else None
            if path is None:
                preset = StyleLibrary(None).find(s.name)
                if preset is None:
                    raise StyleError(f"There is no style named '{s.name}'; pick one from the Style panel's list.")
                path = preset.path
            key = (str(path), path.stat().st_mtime_ns if path.is_file() else 0)
            cache = self.__dict__.setdefault("_adapters", {})
            if key not in cache:
                cache[key] = read_preset(path, self.folder.name, self.version)[0]
            out.append((cache[key], float(s.strength)))
        return tuple(out)

    def styles_said_of(self, adapters, sentence: str) -> tuple:
        """((Adapter, strength), ...) with each style's condition shift said of `sentence`
        (`style_words.said_of`): a learned style is a mixture of style words, and each word's adverbs
        are appended to this sentence instead of their move averaged over everyday prompts. A shift that
        is no such mixture is kept as it is; the adapters themselves are never changed."""
        import dataclasses

        from . import style_words

        out = []
        for adapter, strength in adapters:
            if adapter.shift is None or not strength:
                out.append((adapter, strength))
                continue
            if not hasattr(self, "_style_basis"):  # every word's averaged move, as the learner mixes them
                self._style_basis = style_words.basis(self.model)
            weights = style_words.mixture(adapter.shift, self._style_basis)
            if weights is None:
                out.append((adapter, strength))
                continue
            shift = style_words.said_of(self.model, weights, sentence).to(adapter.shift.device, adapter.shift.dtype)
            out.append((dataclasses.replace(adapter, shift=shift), strength))
        return tuple(out)

    @property
    def version(self) -> str:
        """The first 12 hex digits of the weights' SHA-256 (names a model exactly, whatever its folder)."""
        if not hasattr(self, "_version"):
            import hashlib

            h = hashlib.sha256()
            with open(self.folder / "model.safetensors", "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._version = h.hexdigest()[:12]
        return self._version

    def _finish(self, q, root, known, mask, foot_lock: bool) -> MotionClip:
        from ..retargeting.cleanup import contacts_from_motion, continuous_twist, pin_planted_feet

        clip = MotionClip(continuous_twist(q), root, self.fps)
        if foot_lock:
            # feet that are low and slow in the motion itself. The model's contact channels are not
            # used: on dance (a pivot on the ball of the foot) they flag feet that turn, and pinning
            # those bends the legs away from the motion (model card: sampling, foot lock)
            locked = pin_planted_feet(clip, contacts_from_motion(clip))
            if known is not None and mask is not None and mask.any():
                locked = _fade_towards_keys(clip, locked, mask)
            clip = locked
        if known is not None and mask is not None and mask.any():
            q, r = _restore_known(clip.rotations, clip.root_translation, known, mask)
            clip = MotionClip(q, r, self.fps)
        return clip

    def _lead_in(self, num_frames: int, mask: np.ndarray | None, start: float) -> int:
        """Free frames to make before a request whose first frame has keyed pose values and the second
        none (0 otherwise, or where they would cost another window)."""
        if LEAD_IN is None or mask is None or start > 0 or not mask[0, POSE].any() or \
                (num_frames > 1 and mask[1, POSE].any()):
            return 0
        room = self.max_frames - num_frames
        if num_frames <= self.config.window_frames:
            room = min(room, self.config.window_frames - num_frames)
        return max(0, min(LEAD_IN, room))

    def windows(self, num_frames: int) -> list[tuple[int, int]]:
        """Frame ranges generated one after another; a quarter window of overlap joins them."""
        w = min(self.config.window_frames, self.max_frames)
        if num_frames <= w:
            return [(0, num_frames)]
        hop = w - w // 4
        out, a = [], 0
        while True:
            b = min(a + w, num_frames)
            out.append((max(0, b - w), b))
            if b == num_frames:
                return out
            a += hop

    def guided(self, text, known, mask, guidance: float, key_guidance: float = 1.0, noisy_text=None) -> Guided:
        """The model with its condition bound, guided as this generator samples (styles at
        `style_guidance_factor` times `guidance`, left out from `unstyled_from` up; `noisy_text` at the
        steps from `noisy_content_from` up); every sampling path (windows, restyle) builds it here."""
        return Guided(self.model, text, known, mask, guidance, style_scale=guidance * self.style_guidance_factor,
                      known_scale=key_guidance, noisy_text=noisy_text, noisy_from=self.noisy_content_from,
                      unstyled_from=self.unstyled_from)

    def _sample(self, text, known, mask, num_frames, seed, steps, guidance, callback, smoothing=None, adapters=(),
                start: float = 0.0, key_guidance: float = 1.0, noisy_text=None):
        """One window: world-frame quaternions (T, 22, 4), root (T, 3), contacts (T, 4)."""
        dev, m = self.device, self.model
        use_known = known is not None and mask is not None and bool(mask.any())
        yaw, origin = 0.0, np.zeros(2)
        if use_known:
            yaw, origin = _reference_frame(known, mask)
            ref = _encode_world(known, yaw, origin, self.fps).to(dev)
            known_t = (ref - m.mean) / m.std
            mask_t = torch.as_tensor(mask, dtype=torch.float32, device=dev)[None]
        else:
            known_t = torch.zeros(1, num_frames, rep.NUM_FEATURES, device=dev)
            mask_t = torch.zeros_like(known_t)
        # the model is shared between requests: adapters are attached only while this request holds it
        with self._lock, lora.applied(m, adapters):
            denoise = self.guided(text, known_t, mask_t, guidance, key_guidance, noisy_text)
            from_draft = use_known and start > 0
            # a run from a draft starts below the noisy end that the step spacing crowds: its steps stay even
            timesteps = self.diffusion.timesteps(steps, 1.0 if from_draft else self.step_power)
            x = initial_noise(known_t, seed)
            if from_draft:
                # from the draft in `known`, noised to `start` of the schedule (the steps above it skipped)
                top = min(self.diffusion.steps - 1, int(round(start * self.diffusion.steps)))
                timesteps = [t for t in timesteps if t <= top] or [0]
                x = self.diffusion.q_sample(known_t, torch.full((1,), timesteps[0], device=dev), x)
            x0 = sample_ddim(denoise, x, timesteps, self.diffusion.alphas_cumprod, known_t, mask_t, callback,
                             eta=self.eta, noise=step_noise(seed), drop_alternation=self.drop_alternation,
                             stats=(m.mean, m.std))
        feats = rep.smooth(x0 * m.std + m.mean, self.smoothing if smoothing is None else smoothing)
        if use_known:
            # exact: known columns come from the reference, not from a normalise/denormalise round trip
            feats = torch.where(torch.as_tensor(mask, device=dev)[None], ref, feats)
        q, root, contacts = rep.decode(feats.float().cpu())
        q, root = q[0].double().numpy(), root[0].double().numpy()
        if use_known:
            q, root = _to_world(q, root, yaw, origin)
            q, root = _restore_known(q, root, known, mask)
        return q, root, contacts[0].numpy()


# ----------------------------------------------------------------------------- reference frames
TRAVEL_FACING_M = 0.1
"""A known root path that travels at least this far faces the model frame along its first stretch
when no pelvis rotation is known (`_reference_frame`)."""


BACKWARD_TRAVEL_M = 0.5
"""Least keyed travel against the pelvis's facing for `travels_backwards`."""


def travels_backwards(known: MotionClip, mask: np.ndarray) -> bool:
    """Whether the keyed motion walks backwards: over the frames whose root ground position and pelvis
    rotation are both known, the root moves at least `BACKWARD_TRAVEL_M` against the way the pelvis
    faces (the mean of the facings at each step's two ends), and three times as far as along it.
    Sideways travel counts for neither."""
    pel = rep.joint_feature_slices(0)
    rows = np.flatnonzero(mask[:, 0:2].all(axis=1) & mask[:, pel].all(axis=1))
    if len(rows) < 2:
        return False
    m = rep.quat_to_matrix(torch.as_tensor(known.rotations[rows, 0], dtype=torch.float64)).numpy()
    face = -m[:, :2, 1]  # the pelvis's forward (-Y at rest) on the ground
    face /= np.maximum(np.linalg.norm(face, axis=-1, keepdims=True), 1e-9)
    step = np.diff(known.root_translation[rows, :2], axis=0)
    mid = face[:-1] + face[1:]
    mid /= np.maximum(np.linalg.norm(mid, axis=-1, keepdims=True), 1e-9)
    along = (step * mid).sum(axis=-1)
    back, ahead = float(-along[along < 0].sum()), float(along[along > 0].sum())
    return back >= BACKWARD_TRAVEL_M and back >= 3.0 * ahead


def _reference_frame(known: MotionClip, mask: np.ndarray, facing: bool = False) -> tuple[float, np.ndarray]:
    """Yaw and ground origin of the model frame, taken from the first frame whose pelvis/root is known.

    The model was trained on windows that start facing its forward axis. With no pelvis rotation
    known, the yaw comes from the known root path's first stretch (a character faces where it
    walks), else 0. facing: `known` is a whole motion (restyle): its first frame's pelvis gives the yaw."""
    pel = rep.joint_feature_slices(0)
    rows = [0] if facing else np.flatnonzero(mask[:, pel].all(axis=1))
    rrows = np.flatnonzero(mask[:, 0:2].all(axis=1))
    yaw = 0.0
    if len(rows):
        m = rep.quat_to_matrix(torch.as_tensor(known.rotations[rows[0], 0]))
        yaw = float(rep.heading(m))
    elif len(rrows) > 1:
        path = known.root_translation[rrows, :2]
        far = np.flatnonzero(np.linalg.norm(path - path[0], axis=-1) >= TRAVEL_FACING_M)
        if len(far):
            d = path[far[0]] - path[0]
            yaw = float(np.arctan2(d[1], d[0]) + np.pi / 2)  # as `rep.heading`: 0 when travelling along -Y
    origin = known.root_translation[rrows[0], :2] if len(rrows) else known.root_translation[0, :2]
    return yaw, np.asarray(origin, dtype=np.float64)


def _encode_world(clip: MotionClip, yaw: float, origin: np.ndarray, fps: float) -> torch.Tensor:
    rot = torch.as_tensor(clip.rotations, dtype=torch.float64)[None]
    root = torch.as_tensor(clip.root_translation, dtype=torch.float64)[None].clone()
    root[..., :2] -= torch.as_tensor(origin)
    undo = rep.yaw_matrix(torch.tensor(-yaw, dtype=torch.float64))
    rotm = rep.quat_to_matrix(rot)
    rotm[:, :, 0] = undo @ rotm[:, :, 0]
    root = (undo @ root[..., None])[..., 0]
    pos = rep.canonical_forward_kinematics_torch(rotm, root)
    contacts = rep.foot_contacts(pos, fps)
    feats = torch.cat([root, rep.matrix_to_6d(rotm).reshape(1, clip.num_frames, -1), contacts], -1)
    return feats.float()


def _to_world(q: np.ndarray, root: np.ndarray, yaw: float, origin: np.ndarray):
    from ..body import quat

    rz = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    q = q.copy()
    q[:, 0] = quat.mul(np.broadcast_to(rz, q[:, 0].shape), q[:, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    root = root.copy()
    x, y = root[:, 0].copy(), root[:, 1].copy()
    root[:, 0], root[:, 1] = c * x - s * y + origin[0], s * x + c * y + origin[1]
    return q, root


KEY_FADE_FRAMES = 6
"""Over this many frames on either side of a keyed frame, foot locking fades out, so the motion
meets the animator's key as the model made it (already through the key) instead of popping back."""


def _fade_towards_keys(free: MotionClip, locked: MotionClip, mask: np.ndarray) -> MotionClip:
    """`locked` (free with its feet pinned) blended back to `free` at frames where a pose value is known."""
    from ..body import quat

    keyed = np.flatnonzero(mask[:, POSE].any(axis=1))
    frames = np.arange(free.num_frames)
    dist = np.abs(frames[:, None] - keyed[None, :]).min(axis=1)
    w = np.clip(dist / KEY_FADE_FRAMES, 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    q = quat.slerp(free.rotations, locked.rotations, np.broadcast_to(w[:, None], free.rotations.shape[:2]))
    root = free.root_translation + w[:, None] * (locked.root_translation - free.root_translation)
    return MotionClip(q, root, free.fps)


def _restore_known(q: np.ndarray, root: np.ndarray, known: MotionClip, mask: np.ndarray):
    """Copy known rotations/root coordinates back bit for bit (no float32 round trip)."""
    q, root = q.copy(), root.copy()
    for j in range(len(JOINT_NAMES)):
        rows = mask[:, rep.joint_feature_slices(j)].all(axis=1)
        q[rows, j] = known.rotations[rows, j]
    for k in range(3):
        rows = mask[:, k]
        root[rows, k] = known.root_translation[rows, k]
    return q, root
