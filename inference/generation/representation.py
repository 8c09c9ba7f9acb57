"""The motion representation the model sees, in torch (differentiable, batched).

Per frame, 139 numbers:
  [0:3]     root (pelvis) position in metres, absolute in the clip's frame: x, y on the ground, z height.
            Absolute (not velocities) so that keyframed root positions can be imposed directly.
  [3:135]   22 local joint rotations as 6D (first two columns of the rotation matrix; continuous,
            Zhou et al. 2019); the pelvis entry is its world orientation.
  [135:139] foot contacts (left ankle, left toe, right ankle, right toe), 1 = planted.
A clip is put in its own frame before encoding: the pelvis at frame 0 stands over the origin and
faces -Y (the canonical skeleton's forward).
"""
from __future__ import annotations

import torch

from ..body.skeleton import CANONICAL, CONTACT_FEATURES, FEET, JOINT_NAMES, NUM_JOINTS, canonical_forward_kinematics_torch

ROOT = slice(0, 3)
ROT = slice(3, 3 + 6 * NUM_JOINTS)
CONTACT = slice(3 + 6 * NUM_JOINTS, 3 + 6 * NUM_JOINTS + len(FEET))
NUM_FEATURES = CONTACT.stop
FOOT_INDEX = [JOINT_NAMES.index(n) for n in FEET]



def joint_feature_slices(j: int) -> slice:
    """Columns of joint j's rotation."""
    return slice(ROT.start + 6 * j, ROT.start + 6 * (j + 1))


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    m = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) to unit quaternions (w, x, y, z), numerically safe branch choice."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                     m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                     m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 - m00 - m11 + m22], -1),
    ], -2)  # (..., 4, 4): row k is 4*q*q_k
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = best.argmax(-1, keepdim=True)
    q = torch.gather(cands, -2, k[..., None].expand(k.shape[:-1] + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0)


def matrix_to_6d(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def sixd_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def yaw_matrix(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    z, o = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(angle.shape + (3, 3))


def heading(pelvis: torch.Tensor) -> torch.Tensor:
    """Yaw angle of the pelvis forward (-Y at rest) from its world rotation matrix (..., 3, 3)."""
    fwd = -pelvis[..., :, 1]
    return torch.atan2(fwd[..., 1], fwd[..., 0]) + torch.pi / 2  # 0 when facing -Y


def canonicalize(rotmats: torch.Tensor, root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate/translate (B, T, ...) so frame 0's pelvis faces -Y over the origin (height untouched)."""
    yaw = heading(rotmats[:, 0, 0])
    undo = yaw_matrix(-yaw)  # (B, 3, 3)
    rot = rotmats.clone()
    rot[:, :, 0] = undo[:, None] @ rotmats[:, :, 0]
    r = root.clone()
    r[..., :2] = r[..., :2] - root[:, :1, :2]
    r = (undo[:, None] @ r[..., None])[..., 0]
    return rot, r


def foot_contacts(positions: torch.Tensor, fps: float) -> torch.Tensor:
    """(B, T, 4) contact flags from joint positions (B, T, 22, 3)."""
    rest = torch.as_tensor(CANONICAL.rest_pose()[1][FOOT_INDEX, 2], dtype=positions.dtype, device=positions.device)
    feet = positions[:, :, FOOT_INDEX]
    vel = torch.zeros_like(feet[..., :2])
    vel[:, 1:] = (feet[:, 1:, :, :2] - feet[:, :-1, :, :2]) * fps
    vel[:, 0] = vel[:, 1] if feet.shape[1] > 1 else 0
    low = feet[..., 2] - rest < CONTACT_FEATURES.height
    slow = vel.norm(dim=-1) < CONTACT_FEATURES.speed
    return (low & slow).to(positions.dtype)


def encode(rotations: torch.Tensor, root: torch.Tensor, fps: float, canonical: bool = True) -> torch.Tensor:
    """Quaternions (B, T, 22, 4) + root (B, T, 3) -> features (B, T, 139)."""
    rotmats = quat_to_matrix(rotations)
    if canonical:
        rotmats, root = canonicalize(rotmats, root)
    pos = canonical_forward_kinematics_torch(rotmats, root)
    contacts = foot_contacts(pos, fps)
    b, t = root.shape[:2]
    return torch.cat([root, matrix_to_6d(rotmats).reshape(b, t, -1), contacts], dim=-1)


def decode_rotmats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (..., T, 139) -> local rotation matrices (..., T, 22, 3, 3) and root (..., T, 3)."""
    d6 = features[..., ROT].reshape(features.shape[:-1] + (NUM_JOINTS, 6))
    return sixd_to_matrix(d6), features[..., ROOT]


def positions(features: torch.Tensor) -> torch.Tensor:
    rotmats, root = decode_rotmats(features)
    return canonical_forward_kinematics_torch(rotmats, root)


def decode(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features -> quaternions (..., T, 22, 4), root (..., T, 3), contacts (..., T, 4) in [0, 1]."""
    rotmats, root = decode_rotmats(features)
    return matrix_to_quat(rotmats), root, features[..., CONTACT].clamp(0, 1)


def smooth(features: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass over time (frames) of the root and rotation columns of (B, T, F) features.

    Removes frame-to-frame noise the denoiser leaves; sigma is in frames (1 frame at 20 fps keeps
    motion below about 3 Hz nearly untouched). Contacts are left as they are.
    """
    if sigma <= 0 or features.shape[1] < 3:
        return features
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=features.dtype, device=features.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    b, t, f = features.shape
    cols = features[..., : CONTACT.start].transpose(1, 2).reshape(b * CONTACT.start, 1, t)
    padded = torch.nn.functional.pad(cols, (radius, radius), mode="replicate")
    out = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1)).reshape(b, CONTACT.start, t).transpose(1, 2)
    return torch.cat([out, features[..., CONTACT.start:]], dim=-1)
