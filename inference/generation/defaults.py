"""Sampling defaults chosen on the validation split for the shipped weights (see the model card).

Torch-free, so the panel's properties and the runtime read the same numbers.
"""

STEPS = 10
"""Denoising steps of a Generate press (10 since the 8-block weights: 12 and 15 read a little better on
validation but a 4-s clip then takes 0.21 and 0.27 s on the 2-core CPU, not 10x faster than MDM-50)."""

GUIDANCE = 4.0
"""Classifier-free guidance scale (4 since the sampler drops the frame-rate alternation: guidance had
fed the tremor, and without it validation content rose from 0.906 at 2.5 to 0.930 at 4, FID 11.0 / 11.1)."""

ETA = 1.0
"""Sampler stochasticity (`sampler.sample_ddim`): 1 draws each step's noise afresh (ancestral), so
noise the denoiser lets through is not carried from step to step; 0 is deterministic DDIM."""

DROP_ALTERNATION = True
"""Whether the sampler drops the even/odd frame alternation from every estimate but the last
(`sampler.sample_ddim`); on validation it halved FID and brought the Nyquist share to the real takes'."""

STEP_POWER = 1.5
"""How the sampler's steps are spaced over the noise schedule (`diffusion.Diffusion.timesteps`): 1 evenly,
1.5 crowded towards the noisy end (10 steps: t = 999, 962, 894, 807, 703, 585, 455, 314, 162, 0), where
the motion's shape is decided. Validation (sitting 13's weights, 10 steps, guidance 4, 3 seeds): content
0.930 -> 0.932, style 0.930 -> 0.940, FID 11.1 -> 9.8; the wrists of the 39 wave and goodbye takes'
own sentences move twice as much (velocity energy 0.25 -> 0.49 m^2/s^2; real takes 2.82);
in-betweening unchanged (L2P 30 0.549 -> 0.545, blocking 0.484 -> 0.489)."""

STYLE_GUIDANCE_FACTOR = 1.25
"""Attached styles are guided at this multiple of the text guidance (`sampler.Guided` style_scale);
1 guides a style like a word in the prompt. On its own, stronger style guidance trades content for
style (validation style bench: 1.25 read style 0.79 / content kept 0.88 / monotone 0.84 against 0.75 /
0.90 / 0.90 at 1; 1.5: 0.83 / 0.87 / 0.83; 2: 0.89 / 0.74 / 0.76). With the content kept whole at
the noisy steps (`NOISY_CONTENT_FROM`) the content is no longer what it trades: see there."""

OFFSET_FADE = 2.0
"""The prompt reader's content offset (`reader.PromptReader.content_shift`) is kept at 1 - this x the
styles' summed strength: gone by half strength. The offset holds a style back, so with 1 (gone only at
full strength) a style at 0.5 often read no more than at 0: on the validation style bench, style rising
with strength 0 -> 0.5 -> 1 was 0.806 with 1 and 0.833 with 2 (strength 0 and 1 unchanged)."""

NOISY_CONTENT_FROM = 500
"""With styles attached, the prompt reader's content offset fades (`OFFSET_FADE`) only at the sampler's
steps below this diffusion step; at the noisy steps (t >= this: 6 of the 10 default steps), where what
the motion is gets decided, the sentence keeps its whole offset (`sampler.Guided` noisy_text), and
the style is guided harder (`STYLE_GUIDANCE_FACTOR`) to say how it is done. Validation style bench
(6 styles x 24 prompts, seeds 0-23; recognised / content kept / style rising with strength): offset
faded at every step, style guidance 1: 0.743 / 0.835 / 0.833; kept from step 600 up: 0.694 / 0.917 /
0.826; kept from 600 / 500 / 400 up with style guidance 1.25: 0.757 / 0.851 / 0.833, 0.764 / 0.851 /
0.847, 0.764 / 0.851 / 0.847; from 400 with guidance 1.5: 0.819 / 0.769 / 0.819."""

UNSTYLED_FROM = 900
"""Attached styles are left out of the sampler's estimates at the steps from this diffusion step up
(2 of the 10 default steps: t = 999, 962): the motion's first outline is the prompt's alone, so a
style's strength changes how the same take is done rather than which take it is. Validation style
bench with the settings above (seeds 0-23 / 100-123): styled at every step 0.764 / 0.851 / 0.847 (seeds
0-23); left out from 970 (the first step) 0.764 / 0.868 / 0.847 and 0.785 / 0.795 / 0.854; from 900
0.750 / 0.860 / 0.889 and 0.743 / 0.827 / 0.868; from 800 0.681 / 0.893 / 0.847 (style lost). The
take stays closer as a style turns up (`python -m benchmarks.style_take`, shipped presets, 6 prompts,
mean joint distance between strength 1 and 0): elderly 0.456 -> 0.393 m, tired 0.645 -> 0.472 m,
masculine 0.281 -> 0.242 m, feminine 0.752 -> 0.664 m."""

KEY_GUIDANCE = 3.0
"""Guidance on keyed poses (`sampler.Guided` known_scale) when in-betweening: the in-between moves
further from what the model would make with no keys towards what the keys imply. Validation
(`benchmarks.inbetween --split val --limit 80 --key-guidance K`): L2P ratio 5 / 15 / 30 0.679 /
0.584 / 0.567 at 1, 0.686 / 0.574 / 0.549 at 3, 0.714 / 0.561 / 0.622 at 5; on the split's 38
windows of 6 s keyed every second, error / slerp 0.695 at 1, 0.643 at 1.75, 0.626 at 3, 0.623 at 3.5.
Each step runs the model twice (with and without the keys)."""
