"""The job worker every operator uses, driven through its plain poll function (no event loop)."""
import threading

import numpy as np
import pytest

from inference.generation import defaults, job as jobs
from inference.generation.generate import Generator
from inference.generation.model import Denoiser, ModelConfig
from inference.generation.request import GenerationRequest, PostProcess
from inference.generation.sampler import Progress

TINY = ModelConfig(width=32, layers=1, heads=2, ff_mult=2, max_frames=60, window_frames=40, min_frames=8, patch=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny")
    Denoiser(TINY).save(d)
    return d


def _request(model_dir, **kw):
    base = dict(prompt="a person walks", seconds=1.0, seeds=(1, 2), steps=3, device="CPU", model_dir=str(model_dir))
    base.update(kw)
    return GenerationRequest(**base)


def test_a_request_runs_to_completion_with_progress(model_dir, monkeypatch):
    monkeypatch.setattr("inference.generation.text.encode", lambda texts: np.ones((1, 384), np.float32) / 384 ** 0.5)
    job = jobs.generation_job(_request(model_dir))
    assert jobs.poll(job).status == jobs.RUNNING
    job.start().thread.join(timeout=120)
    state = jobs.poll(job)
    assert state.status == jobs.FINISHED and state.error is None
    res = state.result
    assert [t.seed for t in res.takes] == [1, 2]
    assert (state.step, state.total) == (6, 6) and state.progress == 1.0
    assert all(t.clip.num_frames == 20 for t in res.takes)
    assert not np.allclose(res.takes[0].clip.rotations, res.takes[1].clip.rotations)
    assert res.model_name == model_dir.name and len(res.model_version) == 12 and res.device == "cpu"
    # the same request through Generator.run gives the same takes (the job adds nothing)
    again = Generator(model_dir, "cpu").run(_request(model_dir))
    assert np.array_equal(again.takes[1].clip.rotations, res.takes[1].clip.rotations)


def test_cancel_stops_at_the_next_step(model_dir, monkeypatch):
    monkeypatch.setattr("inference.generation.text.encode", lambda texts: np.ones((1, 384), np.float32) / 384 ** 0.5)
    job = jobs.generation_job(_request(model_dir, steps=8))
    gate, reached = threading.Semaphore(0), threading.Semaphore(0)
    real = job.on_progress

    def on_progress(p):
        real(p)
        reached.release()
        gate.acquire()
        return real(p)  # asks again: cancel may have come while this step was held

    job.on_progress = on_progress
    job.start()
    for k in (1, 2):
        assert reached.acquire(timeout=60)
        state = jobs.poll(job)
        assert state.status == jobs.RUNNING and state.step == k and state.total == 16
        if k == 2:
            job.cancel()
        gate.release()
    job.thread.join(timeout=60)
    state = jobs.poll(job)
    assert state.status == jobs.CANCELLED and state.result is None and state.step == 2


def test_an_error_is_handed_back_not_raised():
    def work(on_progress):
        on_progress(Progress(1, 3))
        raise RuntimeError("the weights are damaged; reinstall Marionette")

    job = jobs.Job(work).start()
    job.thread.join(timeout=10)
    state = jobs.poll(job)
    assert state.status == jobs.ERROR and "reinstall" in str(state.error) and state.step == 1


def test_the_result_records_what_was_used(model_dir, monkeypatch):
    monkeypatch.setattr("inference.generation.text.encode", lambda texts: np.ones((1, 384), np.float32) / 384 ** 0.5)
    res = Generator(model_dir, "cpu").run(_request(model_dir, seeds=(4,), post=PostProcess(foot_lock=False)))
    import json

    rec = json.loads(res.record(0))
    assert rec["seed"] == 4 and rec["prompt"] == "a person walks" and rec["steps"] == 3
    assert rec["guidance"] == defaults.GUIDANCE and rec["styles"] == [] and rec["foot_lock"] is False
    assert rec["model"] == model_dir.name and rec["model_version"] == res.model_version
