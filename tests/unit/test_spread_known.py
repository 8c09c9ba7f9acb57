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


def _turning_features(frames, yaw_deg):
    """(1, T, 139) features: every joint at rest, the pelvis turned about the vertical by yaw_deg[t]."""
    from inference.generation import representation as rep

    x = torch.zeros(1, frames, rep.NUM_FEATURES)
    eye6 = rep.matrix_to_6d(torch.eye(3))
    x[..., rep.ROT] = eye6.repeat(rep.NUM_JOINTS)
    yaw = torch.deg2rad(torch.as_tensor(yaw_deg, dtype=torch.float32))
    x[0, :, rep.joint_feature_slices(0)] = rep.matrix_to_6d(rep.yaw_matrix(yaw))
    return x


def _pelvis_yaw_steps(x):
    from inference.generation import representation as rep

    r = rep.sixd_to_matrix(x[0, :, rep.joint_feature_slices(0)])
    rel = r[1:] @ r[:-1].transpose(-1, -2)
    return torch.rad2deg(torch.acos(((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))


def test_a_keyed_turn_around_the_estimate_did_not_make_turns_smoothly_instead_of_flipping():
    """Keys a second apart with the pelvis turned 170 degrees between them, and an estimate that keeps
    facing the first key's way: spread as a rotation, the pelvis turns a little every frame between
    the keys. Blending the six numbers instead passes through a degenerate rotation halfway, where the
    pelvis flips by most of the turn in one frame (a lurch seen on the test split's salsa spins)."""
    from inference.generation import representation as rep

    t = 41
    truth = _turning_features(t, [0.0] * 10 + [170.0 * min(1.0, k / 20) for k in range(31)])
    estimate = _turning_features(t, [0.0] * t)  # the model did not turn
    mask = torch.zeros_like(truth)
    mask[:, [0, 9, 30, 40]] = 1  # whole poses keyed before and after the turn
    stats = (torch.zeros(rep.NUM_FEATURES), torch.ones(rep.NUM_FEATURES))
    turned = spread_known(estimate, truth, mask, stats)
    plain = spread_known(estimate, truth, mask)
    assert torch.equal(turned[mask > 0], truth[mask > 0])
    steps = _pelvis_yaw_steps(turned)
    assert steps.max() < 20, f"largest pelvis turn in one frame {steps.max():.0f} deg (170 over 21 frames)"
    assert _pelvis_yaw_steps(plain).max() > 60, "the six numbers blended flip the pelvis halfway"
    # everything else stays as the estimate had it
    assert torch.equal(turned[..., rep.joint_feature_slices(1).start:], plain[..., rep.joint_feature_slices(1).start:])


def test_small_misses_are_spread_as_before():
    """Below a sixth of a turn between the two keys' misses, a rotation is spread as six plain numbers."""
    from inference.generation import representation as rep

    t = 41
    truth = _turning_features(t, [2.0 * k for k in range(t)])
    estimate = _turning_features(t, [1.5 * k + 5 for k in range(t)]) + 0.01 * torch.randn(1, t, rep.NUM_FEATURES)
    mask = torch.zeros_like(truth)
    mask[:, [0, 20, 40]] = 1
    stats = (torch.zeros(rep.NUM_FEATURES), torch.ones(rep.NUM_FEATURES))
    assert torch.allclose(spread_known(estimate, truth, mask, stats), spread_known(estimate, truth, mask), atol=1e-6)
