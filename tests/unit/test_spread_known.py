"""Known values are followed, not pasted: the sampler's miss at a key is spread over the free frames."""
import torch

from inference.generation.diffusion import spread_known


def _walk(t=60, f=5):
    time = torch.arange(t, dtype=torch.float32)[None, :, None]
    return torch.sin(time / 7.0 + torch.arange(f)[None, None, :]) + 0.05 * time


def test_known_values_come_out_exactly_and_free_columns_stay():
    truth = _walk()
    pred = truth + 0.3 * torch.randn_like(truth)
    mask = torch.zeros_like(truth)
    mask[:, ::15, :3] = 1
    out = spread_known(pred, truth, mask)
    assert torch.equal(out[mask > 0], truth[mask > 0])
    assert torch.equal(out[..., 3:], pred[..., 3:]), "columns with nothing known are the model's"


def test_a_prediction_offset_from_the_keys_is_moved_onto_the_keyed_path_without_a_jump():
    truth = _walk()
    pred = truth + torch.tensor([0.6, -0.4, 0.2, 0.0, 1.0])  # the model's motion, misplaced
    mask = torch.zeros_like(truth)
    mask[:, [0, 20, 40, 59]] = 1
    out = spread_known(pred, truth, mask)
    # the offset is undone up to the motion's own curvature over a frame (the run is extended at its velocity)
    assert (out - truth).abs().max() < 0.05  # of misses of 0.4-1.0: what is left is the curve over a frame
    pasted = torch.where(mask > 0, truth, pred)
    jump = lambda x: (x[:, 1:] - x[:, :-1]).abs().max()  # noqa: E731
    assert jump(out) < 0.2 < jump(pasted), "pasting keys into misplaced motion makes it jump at each key"


def test_a_model_that_copies_the_key_but_misses_it_next_door_is_still_joined_to_it():
    truth = _walk()
    pred = truth + 0.5
    keys = [0, 30, 59]
    pred[:, keys] = truth[:, keys]  # the estimate holds the key itself, its free neighbours do not
    mask = torch.zeros_like(truth)
    mask[:, keys] = 1
    out = spread_known(pred, truth, mask)
    assert (out - truth).abs().max() < 0.05  # of misses of 0.4-1.0: what is left is the curve over a frame


def test_a_miss_that_changes_between_keys_is_blended_smoothly():
    truth = _walk()
    pred = truth.clone()
    pred[:, :30] += 0.5  # misses the first key by 0.5, the second by nothing
    mask = torch.zeros_like(truth)
    mask[:, [10, 50]] = 1
    out = spread_known(pred, truth, mask)
    err = (out - truth).abs().amax(-1)[0]
    assert err[10] == 0 and err[50] == 0
    # beyond the first key the correction is held; between keys it fades without a step
    step = (out - truth)[0, 11:50, 0].diff().abs().max()
    assert step < 0.51, "only the model's own step at frame 30 remains"
