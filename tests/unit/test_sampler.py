"""The sampler in the k-diffusion shape: guidance is a wrapper, the loop a plain function."""
import torch

from inference.generation.diffusion import Diffusion, sample, spread_known
from inference.generation.model import Denoiser, ModelConfig
from inference.generation.sampler import (Cancelled, Guided, initial_noise, sample_ddim, step_noise,
                                         without_alternation)

TINY = ModelConfig(width=32, layers=1, heads=2, ff_mult=2, max_frames=24, window_frames=24, min_frames=4)


def _setup(seed=0):
    torch.manual_seed(seed)
    model = Denoiser(TINY).eval()
    text = torch.randn(1, TINY.text_dim)
    known = torch.randn(1, 12, TINY.features)
    mask = torch.zeros_like(known)
    mask[:, [0, 11], :10] = 1
    return model, text, known, mask


def test_guidance_one_through_the_wrapper_is_the_bare_denoiser():
    model, text, known, mask = _setup()
    x, t = torch.randn(1, 12, TINY.features), torch.tensor([500])
    with torch.no_grad():
        bare = model(x, t, text, known, mask)
        assert torch.equal(Guided(model, text, known, mask, 1.0)(x, t), bare)


def test_guidance_mixes_conditioned_and_unconditioned_estimates():
    model, text, known, mask = _setup()
    x, t = torch.randn(1, 12, TINY.features), torch.tensor([300])
    with torch.no_grad():
        cond = model(x, t, text, known, mask)
        uncond = model(x, t, torch.zeros_like(text), known, mask)
        got = Guided(model, text, known, mask, 3.0)(x, t)
    assert torch.allclose(got, uncond + 3.0 * (cond - uncond), atol=1e-5)
    assert not torch.allclose(got, cond, atol=1e-3), "a scale of 3 moves the estimate away from the conditioned one"
    with torch.no_grad():  # no text: nothing to guide, the bare model
        assert torch.equal(Guided(model, torch.zeros_like(text), known, mask, 3.0)(x, t),
                           model(x, t, torch.zeros_like(text), known, mask))


def _styled_setup():
    """`_setup` plus a style (a condition shift), an input, and the bare model's estimates with and
    without text, each with and without the style."""
    from inference.generation import lora

    model, text, known, mask = _setup()
    x, t = torch.randn(1, 12, TINY.features), torch.tensor([300])
    style = lora.create(model, "style", rank=2)
    style.shift = torch.randn(TINY.width, generator=torch.Generator().manual_seed(3))
    empty = torch.zeros_like(text)
    with torch.no_grad():
        plain = model(x, t, text, known, mask), model(x, t, empty, known, mask)
        with lora.applied(model, ((style, 1.0),)):
            styled = model(x, t, text, known, mask), model(x, t, empty, known, mask)
    return model, text, known, mask, x, t, style, empty, plain, styled


def test_a_style_shift_is_guided_like_a_word_with_or_without_text():
    """The unconditioned estimate has neither the text nor the style's condition shift, so guidance
    strengthens a learned style as it strengthens a style word in the prompt; with no text, a style
    alone still turns guidance on (in-betweening and part edits carry the style too)."""
    from inference.generation import lora

    model, text, known, mask, x, t, style, empty, (plain_cond, plain_uncond), (styled_cond, styled_empty) = \
        _styled_setup()
    with torch.no_grad():
        with lora.applied(model, ((style, 1.0),)):
            got = Guided(model, text, known, mask, 2.5)(x, t)
            alone = Guided(model, empty, known, mask, 2.5)(x, t)
            unguided = Guided(model, text, known, mask, 1.0)(x, t)
        after = Guided(model, empty, known, mask, 2.5)(x, t)
    assert not torch.allclose(styled_cond, plain_cond, atol=1e-4), "the shift changes the conditioned estimate"
    assert torch.allclose(got, plain_uncond + 2.5 * (styled_cond - plain_uncond), atol=1e-5)
    assert torch.allclose(alone, plain_uncond + 2.5 * (styled_empty - plain_uncond), atol=1e-5)
    assert torch.equal(unguided, styled_cond)
    assert torch.equal(after, plain_uncond), "detached: no text and no style is the bare model again"
    assert model.cond_shift.gate is None


def test_a_style_can_be_guided_harder_than_the_prompt():
    """Composed guidance: the prompt is guided as without the style and the style on top of it, so a
    stronger style scale moves only the style's part; equal scales are the two-row mix exactly."""
    from inference.generation import lora

    model, text, known, mask, x, t, style, empty, (plain_cond, plain_uncond), (styled_cond, styled_empty) = \
        _styled_setup()
    with torch.no_grad():
        with lora.applied(model, ((style, 1.0),)):
            composed = Guided(model, text, known, mask, 2.5, style_scale=5.0)(x, t)
            same = Guided(model, text, known, mask, 2.5, style_scale=2.5)(x, t)
            two_row = Guided(model, text, known, mask, 2.5)(x, t)
            alone = Guided(model, empty, known, mask, 2.5, style_scale=5.0)(x, t)
            style_only = Guided(model, text, known, mask, 1.0, style_scale=3.0)(x, t)
        unstyled = Guided(model, text, known, mask, 2.5, style_scale=5.0)(x, t)
    text_part = plain_uncond + 2.5 * (plain_cond - plain_uncond)
    assert torch.allclose(composed, text_part + 5.0 * (styled_cond - plain_cond), atol=1e-5)
    assert torch.equal(same, two_row)
    assert torch.allclose(alone, plain_uncond + 5.0 * (styled_empty - plain_uncond), atol=1e-5)
    assert torch.allclose(style_only, plain_cond + 3.0 * (styled_cond - plain_cond), atol=1e-5)
    assert torch.allclose(unstyled, text_part, atol=1e-5), "no style attached: the style scale plays no part"
    assert model.cond_shift.gate is None


def test_key_guidance_moves_the_estimate_towards_what_the_keys_imply():
    """known_scale w adds (w - 1) * (estimate with the keys - estimate without them), on top of the
    text's guidance; 1 leaves the estimate as it was, and no keys means nothing to guide."""
    model, text, known, mask = _setup()
    x, t = torch.randn(1, 12, TINY.features), torch.tensor([400])
    empty, none = torch.zeros_like(text), torch.zeros_like(known)
    with torch.no_grad():
        keyed = model(x, t, empty, known, mask)
        free = model(x, t, empty, none, none)
        got = Guided(model, empty, known, mask, 4.0, known_scale=2.5)(x, t)
        plain = Guided(model, empty, known, mask, 4.0)(x, t)
        text_keyed = model(x, t, text, known, mask)
        text_free = model(x, t, text, none, none)
        both = Guided(model, text, known, mask, 3.0, known_scale=2.0)(x, t)
        no_keys = Guided(model, empty, known, torch.zeros_like(mask), 4.0, known_scale=2.5)(x, t)
    assert torch.allclose(got, free + 2.5 * (keyed - free), atol=1e-5)
    assert torch.equal(plain, keyed), "no text, no style, no key guidance: the bare model, one call"
    assert torch.allclose(both, keyed + 3.0 * (text_keyed - keyed) + 1.0 * (text_keyed - text_free), atol=1e-5)
    assert torch.equal(no_keys, model(x, t, empty, known, torch.zeros_like(mask)))


def test_a_noisy_text_is_said_at_the_noisy_steps_only():
    """noisy_text replaces the text from step noisy_from up (with the style and its guidance rows as
    before), and the text itself below."""
    model, text, known, mask, x, _, style, empty, _, _ = _styled_setup()
    other = torch.randn(1, TINY.text_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), lora_applied(model, style):
        for step, said in ((600, other), (999, other), (599, text), (0, text)):
            t = torch.tensor([step])
            got = Guided(model, text, known, mask, 2.5, style_scale=4.0, noisy_text=other, noisy_from=600)(x, t)
            assert torch.equal(got, Guided(model, said, known, mask, 2.5, style_scale=4.0)(x, t)), step
        t = torch.tensor([800])
        assert not torch.allclose(Guided(model, other, known, mask, 2.5)(x, t),
                                  Guided(model, text, known, mask, 2.5)(x, t))
        bare = Guided(model, text, known, mask, 1.0, noisy_text=other, noisy_from=600)(x, t)
        assert torch.equal(bare, model(x, t, other, known, mask)), "one call without guidance as well"


def test_styles_can_be_left_out_of_the_first_steps():
    """unstyled_from: from that step up every estimate is the unstyled one (with the style attached,
    guided or not); below it the style is there as before."""
    model, text, known, mask, x, _, style, _, _, _ = _styled_setup()
    for scale in (2.5, 1.0):
        with torch.no_grad():
            plain = {step: Guided(model, text, known, mask, scale)(x, torch.tensor([step])) for step in (950, 300)}
            with lora_applied(model, style):
                styled = Guided(model, text, known, mask, scale, style_scale=4.0)(x, torch.tensor([300]))
                late = Guided(model, text, known, mask, scale, style_scale=4.0, unstyled_from=900)
                got = {step: late(x, torch.tensor([step])) for step in (950, 300)}
        assert torch.equal(got[950], plain[950]), scale
        assert torch.equal(got[300], styled), scale
        assert not torch.allclose(got[300], plain[300], atol=1e-4), "the style is there below the step"
        assert model.cond_shift.gate is None


def lora_applied(model, style):
    from inference.generation import lora

    return lora.applied(model, ((style, 1.0),))


def test_steps_can_crowd_towards_the_noisy_end():
    d = Diffusion(1000)
    assert d.timesteps(10) == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
    crowded = d.timesteps(10, 1.5)
    assert crowded[0] == 999 and crowded[-1] == 0 and len(crowded) == 10
    strides = [a - b for a, b in zip(crowded, crowded[1:])]
    assert all(s > 0 for s in strides)
    assert all(a < b for a, b in zip(strides, strides[1:])), strides  # short strides where it is noisy
    assert strides[0] < 111 < strides[-1]


def test_sampler_takes_any_denoise_callable_and_keeps_known_values():
    _, _, known, mask = _setup()
    calls = []

    def denoise(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    d = Diffusion(1000)
    ts = d.timesteps(5)
    x0 = sample_ddim(denoise, initial_noise(known, 3), ts, d.alphas_cumprod, known, mask)
    assert calls == ts
    assert torch.equal(x0[mask > 0], known[mask > 0])
    # free columns (nothing known in them) stay the denoiser's
    assert torch.equal(x0[..., 20:], torch.zeros_like(x0[..., 20:]))


def test_sample_is_the_guided_model_through_the_plain_sampler():
    model, text, known, mask = _setup()
    d = Diffusion(1000)
    a = sample(model, d, text, known, mask, num_steps=4, guidance=2.5, seed=7)
    b = sample_ddim(Guided(model, text, known, mask, 2.5), initial_noise(known, 7), d.timesteps(4), d.alphas_cumprod,
                    known, mask)
    assert torch.equal(a, b)
    steps = []
    try:
        sample(model, d, text, known, mask, num_steps=6, seed=7, callback=lambda p: steps.append(p.step) or p.step == 2)
    except Cancelled:
        pass
    assert steps == [1, 2]


def _alternation(x):
    """The two-frame (frame-rate) alternation of each column of x (B, T, F)."""
    sign = (-1.0) ** torch.arange(x.shape[1]).view(1, -1, 1)
    return sign * (x * sign).mean(1, keepdim=True)


def test_fresh_noise_every_step_keeps_a_leaking_denoiser_from_building_up_a_tremor():
    # A denoiser that returns the clean motion plus 60 % of its input's frame-rate alternation: the
    # way the trained model lets a wave's wrist noise through at mid noise levels.
    t_frames, f = 40, 6
    clean = torch.sin(torch.linspace(0, 3, t_frames)).view(1, t_frames, 1).expand(1, t_frames, f)

    def leaky(x, t):
        return clean + 0.6 * _alternation(x)

    d = Diffusion(1000)
    known = torch.zeros(1, t_frames, f)
    mask = torch.zeros_like(known)

    def tremor(eta, drop=False):
        out = [sample_ddim(leaky, initial_noise(known, s), d.timesteps(10), d.alphas_cumprod, known, mask, eta=eta,
                           noise=step_noise(s), drop_alternation=drop) for s in range(12)]
        return float(torch.stack([_alternation(x - clean).pow(2).mean() for x in out]).mean())

    assert tremor(1.0) < 0.6 * tremor(0.0)
    # dropping the alternation from every estimate but the last leaves only what the last step lets through
    assert tremor(1.0, drop=True) < 0.1 * tremor(1.0)
    assert tremor(0.0, drop=True) < 0.1 * tremor(0.0)


def test_dropping_the_alternation_keeps_gestures_and_known_values():
    fps, t_frames = 20.0, 80
    time = torch.arange(t_frames) / fps
    wave = torch.sin(2 * torch.pi * 2.0 * time)  # a 2-Hz hand wave
    buzz = (-1.0) ** torch.arange(t_frames)  # a two-frame alternation
    x = torch.stack([wave, wave + 0.5 * buzz, 0.5 * buzz, torch.sin(2 * torch.pi * 5.0 * time)], -1)[None]
    out = without_alternation(x)
    inner = slice(4, -4)
    assert torch.allclose(out[0, :, 0][inner], wave[inner], atol=0.03)  # the wave passes (0.99 of it)
    assert torch.allclose(out[0, :, 1], out[0, :, 0], atol=1e-5)  # the buzz on it goes, ends included
    assert out[0, :, 2].abs().max() < 1e-5
    assert 0.6 < out[0, inner, 3].std() / x[0, inner, 3].std() < 0.9  # 5 Hz keeps three quarters
    # the sampler drops it from intermediate estimates only: known values stay exact, and the last
    # estimate (the returned motion) is the denoiser's own
    known = torch.zeros(1, t_frames, 4)
    mask = torch.zeros_like(known)
    mask[:, ::10] = 1
    known[:, ::10] = 3.0
    d = Diffusion(1000)
    seen = []

    def buzzing(xt, t):
        seen.append(int(t[0]))
        return x.clone()

    out = sample_ddim(buzzing, initial_noise(known, 0), d.timesteps(5), d.alphas_cumprod, known, mask)
    assert torch.equal(out[mask > 0], known[mask > 0])
    assert torch.equal(out, spread_known(x, known, mask))  # the buzz of the last estimate is kept
    assert seen == d.timesteps(5)


def test_stochastic_sampling_is_repeatable_per_seed_and_keeps_known_values():
    model, text, known, mask = _setup()
    d = Diffusion(1000)
    a = sample(model, d, text, known, mask, num_steps=5, guidance=2.5, seed=3, eta=1.0)
    b = sample(model, d, text, known, mask, num_steps=5, guidance=2.5, seed=3, eta=1.0)
    c = sample(model, d, text, known, mask, num_steps=5, guidance=2.5, seed=4, eta=1.0)
    deterministic = sample(model, d, text, known, mask, num_steps=5, guidance=2.5, seed=3, eta=0.0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, deterministic)
    assert torch.equal(a[mask > 0], known[mask > 0])
