"""Quaternion maths on numpy arrays, scalar-first (w, x, y, z) like Blender.

Conversions to and from Euler angles and matrices go through scipy's `Rotation`
(which is scalar-last); everything here only reorders and batches.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def _to_scipy(q: np.ndarray) -> Rotation:
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4)[:, [1, 2, 3, 0]])


def _from_scipy(r: Rotation, shape: tuple) -> np.ndarray:
    return r.as_quat().reshape(-1, 4)[:, [3, 0, 1, 2]].reshape(*shape, 4)


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def conj(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors `v` (..., 3) by unit quaternions `q` (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross over the last axis, without its axis bookkeeping (a third of the foot lock's time)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def to_matrix(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return _to_scipy(q).as_matrix().reshape(*q.shape[:-1], 3, 3)


def from_matrix(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return _from_scipy(Rotation.from_matrix(m.reshape(-1, 3, 3)), m.shape[:-2])


def from_euler(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles as BVH writes them: `order` like "ZXY", applied left to right."""
    a = np.asarray(angles_deg, dtype=np.float64)
    r = Rotation.from_euler(order.upper(), a.reshape(-1, 3), degrees=True)
    return _from_scipy(r, a.shape[:-1])


def to_euler(q: np.ndarray, order: str) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock warnings: the angles are still a valid rotation
        e = _to_scipy(q).as_euler(order.upper(), degrees=True)
    return e.reshape(*q.shape[:-1], 3)


def from_axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest rotation taking direction `a` onto direction `b` (both (..., 3))."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    w = 1.0 + np.sum(a * b, axis=-1, keepdims=True)
    xyz = np.cross(a, b)
    q = np.concatenate([w, xyz], axis=-1)
    # Opposite vectors: any axis perpendicular to a will do.
    opposite = w[..., 0] < 1e-9
    if np.any(opposite):
        a_op = a[opposite] if a.ndim > 1 else a
        perp = np.cross(a_op, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(perp, axis=-1) < 1e-6
        perp = np.where(np.atleast_1d(small)[..., None], np.cross(a_op, np.array([0.0, 1.0, 0.0])), perp)
        fix = np.concatenate([np.zeros(perp.shape[:-1] + (1,)), perp], axis=-1)
        if q.ndim == 1:
            q = fix.reshape(4)
        else:
            q[opposite] = fix
    return normalize(q)


def fit_rotation(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rotation R minimising sum w |R src_i - dst_i|^2 (Kabsch), for direction sets (N, 3)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    r, _ = Rotation.align_vectors(dst, src, weights=w)
    return _from_scipy(r, ())


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit quaternions, elementwise over leading dims."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    d = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(d < 0, -b, b)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    s = np.sin(theta)
    close = s < 1e-6
    safe_s = np.where(close, 1.0, s)
    wa = np.where(close, 1.0 - t, np.sin((1.0 - t) * theta) / safe_s)
    wb = np.where(close, t, np.sin(t * theta) / safe_s)
    return normalize(wa * a + wb * b)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along the time axis so consecutive keys are on the same hemisphere.

    Blender interpolates quaternion channels component-wise; a sign flip between two keys
    would make the bone spin the long way round.
    """
    q = np.array(q, dtype=np.float64, copy=True)
    q = np.moveaxis(q, axis, 0)
    for t in range(1, len(q)):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return np.moveaxis(q, 0, axis)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between direction vectors (..., 3)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    c = np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-12)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees between unit quaternions (sign-agnostic)."""
    d = np.abs(np.sum(np.asarray(a) * np.asarray(b), axis=-1))
    return np.degrees(2.0 * np.arccos(np.clip(d, 0.0, 1.0)))
