"""Time a 4-second clip on the CPU: our model at its default steps, and an MDM-sized reference.

    python -m benchmarks.latency ours [--model DIR]      # prints JSON: seconds, peak RSS
    python -m benchmarks.latency mdm --steps 50          # MDM-sized transformer, random weights

Each runs in its own process (so peak memory is that of one generation setup), with 2 threads.
Text encoding (all-MiniLM-L6-v2) is inside the timed region for both.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
from torch import nn

PROMPT = "a person walks forward and waves with the right hand"
SECONDS = 4.0


def reset_peak_rss() -> None:
    """Forget the high-water mark inherited from the parent process (it survives fork and exec)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_ours(model_dir: str | None, repeats: int) -> dict:
    from inference.generation.generate import DEFAULT_STEPS, Generator

    gen = Generator(model_dir, "cpu")
    gen.generate(PROMPT, seconds=SECONDS, seed=0)  # warm-up: first call loads the text encoder
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        gen.generate(PROMPT + " " * (i % 2), seconds=SECONDS, seed=i + 1)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "all": times, "steps": DEFAULT_STEPS, "peak_rss_mb": peak_rss_mb()}


class MdmSized(nn.Module):
    """The size of MDM's denoiser: 8 layers, 512 wide, 4 heads, feed-forward 1024, 263 features per frame."""

    def __init__(self, features: int = 263, width: int = 512, layers: int = 8):
        super().__init__()
        self.inp = nn.Linear(features, width)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.text = nn.Linear(384, width)
        layer = nn.TransformerEncoderLayer(width, 4, 1024, 0.1, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, features)
        self.pos = nn.Parameter(torch.randn(512, 1, width) * 0.02)

    def forward(self, x, t, text):
        half = 256
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
        temb = self.time(torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], -1))
        cond = (temb + self.text(text))[None]
        h = torch.cat([cond, self.inp(x).transpose(0, 1)], 0)
        h = self.encoder(h + self.pos[: len(h)])
        return self.out(h[1:]).transpose(0, 1)


def time_mdm(steps: int, repeats: int) -> dict:
    from inference.generation.text import encode

    model = MdmSized().eval()
    frames = int(SECONDS * 20)
    encode("warm up")
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        text = torch.as_tensor(encode(PROMPT))
        x = torch.randn(1, frames, 263)
        with torch.no_grad():
            for k in range(steps):
                t = torch.full((2,), float(steps - k))
                out = model(torch.cat([x, x]), t, torch.cat([text, torch.zeros_like(text)]))
                c, u = out.chunk(2)
                x = u + 2.5 * (c - u)  # guidance; the update itself is negligible next to the network
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "all": times, "steps": steps, "peak_rss_mb": peak_rss_mb()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["ours", "mdm"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    reset_peak_rss()
    torch.set_num_threads(args.threads)
    res = time_ours(args.model, args.repeats) if args.which == "ours" else time_mdm(args.steps, args.repeats)
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
