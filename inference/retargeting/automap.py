"""Bone maps from structure alone: hierarchy, rest positions and symmetry, for rigs whose bone names
match no built-in map (custom rigs, renamed bones, robots).

The rest pose says where things are: the feet are the lowest leaves of two long chains whose common
ancestor is the pelvis; the head is the highest leaf; the hands are the outermost leaves whose common
ancestor (the chest) lies on the spine. Along each limb, the two longest consecutive bones are the
upper and lower limb, which fixes hip/knee/ankle and shoulder/elbow/wrist even with extra joints
(hip joints, clavicles, twist-free chains, fingers, toes). Left is the side a character facing the
way its toes point has on its left.
"""
from __future__ import annotations

import numpy as np

from ..body.skeleton import Skeleton

UP_VECTORS = {"Z": np.array([0.0, 0.0, 1.0]), "Y": np.array([0.0, 1.0, 0.0])}
# Facing direction when the feet cannot tell (no toes): Blender characters face -Y; BVH ones +Z.
DEFAULT_FORWARD = {"Z": np.array([0.0, -1.0, 0.0]), "Y": np.array([0.0, 0.0, 1.0])}


class StructureError(ValueError):
    pass


def _ancestors(parents, j) -> list[int]:
    out = []
    while j >= 0:
        out.append(j)
        j = parents[j]
    return out  # j, parent, ..., root


def _lca(parents, a, b) -> int:
    pa = set(_ancestors(parents, a))
    for j in _ancestors(parents, b):
        if j in pa:
            return j
    raise StructureError("joints share no ancestor")


def _path(parents, top, bottom) -> list[int]:
    """Joints from just below `top` down to `bottom` (inclusive); `top` must be an ancestor."""
    up = _ancestors(parents, bottom)
    if top not in up:
        raise StructureError("not an ancestor")
    return list(reversed(up[: up.index(top)]))


def _limb(pos, chain: list[int]) -> tuple[int, int, int]:
    """(upper, middle, end) joints: the consecutive pair of bones with the largest total length."""
    if len(chain) < 3:
        raise StructureError("limb too short")
    best, best_len = None, -1.0
    for i in range(len(chain) - 2):
        a, b, c = chain[i], chain[i + 1], chain[i + 2]
        length = np.linalg.norm(pos[b] - pos[a]) + np.linalg.norm(pos[c] - pos[b])
        if length > best_len + 1e-9:
            best, best_len = (a, b, c), length
    return best


def _arm(pos, arm: list[int], kids, chest_pos, left, height):
    """(collar or None, shoulder, elbow, wrist) along the path from the chest to a fingertip."""

    def lateral(j):
        return abs((pos[j] - chest_pos) @ left)

    i = 0
    collar = None
    # a clavicle starts next to the spine; the shoulder (upper arm) starts well out to the side
    if len(arm) >= 4 and lateral(arm[0]) < 0.06 * height and lateral(arm[1]) > lateral(arm[0]) + 0.03 * height:
        collar, i = arm[0], 1
    shoulder = arm[i]
    after = arm[i + 1:]
    if len(after) < 2:
        raise StructureError("arm too short")
    # the wrist: where the hand branches into fingers, else the joint before the fingertip
    wrist = next((j for j in after[1:] if len(kids[j]) >= 2), None)
    if wrist is None:
        wrist = after[-2] if len(after) >= 3 else after[-1]
    between = after[: after.index(wrist)]
    if not between:
        raise StructureError("no elbow")
    mid = 0.5 * (pos[shoulder] + pos[wrist])
    elbow = min(between, key=lambda j: np.linalg.norm(pos[j] - mid))
    return collar, shoulder, elbow, wrist


def map_by_structure(
    skeleton: Skeleton,
    up: str | np.ndarray = "Z",
    positions: np.ndarray | None = None,
    forward: np.ndarray | None = None,
) -> dict[str, str]:
    """canonical joint name -> skeleton joint name, found from the rest pose (raises StructureError).

    up: "Z", "Y" or a vector in the skeleton's space. positions: (J, 3) joint positions of an upright
    pose to use instead of the rest pose (BVH zero poses are not always standing). forward: the way
    the character faces, used only when its feet have no toes to tell.
    """
    parents = skeleton.parents
    pos = skeleton.rest_pose()[1] if positions is None else np.asarray(positions, dtype=np.float64)
    if isinstance(up, str):
        u = UP_VECTORS[up]
        forward = DEFAULT_FORWARD[up] if forward is None else forward
    else:
        u = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
        forward = DEFAULT_FORWARD["Z"] if forward is None else forward
    h = pos @ u
    height = h.max() - h.min()
    if height <= 0:
        raise StructureError("the skeleton has no height")
    kids = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    leaves = [j for j in range(len(parents)) if not kids[j]]

    def chain_length(top, bottom):
        path = [top] + _path(parents, top, bottom)
        return sum(np.linalg.norm(pos[path[i + 1]] - pos[path[i]]) for i in range(len(path) - 1))

    # feet: the lowest leaf, and the lowest other leaf whose chain from their common ancestor is leg-long
    # (IK targets and pole bones are leaves too, but they hang off short chains, so they are skipped)
    by_height = sorted(leaves, key=lambda j: h[j])[:12]
    pairs = sorted(((a, b) for i, a in enumerate(by_height) for b in by_height[i + 1:]), key=lambda p: h[p[0]] + h[p[1]])
    f1 = f2 = pelvis = None
    for a, b in pairs:
        anc = _lca(parents, a, b)
        if (chain_length(anc, a) > 0.3 * height and chain_length(anc, b) > 0.3 * height
                and abs(h[a] - h[b]) < 0.2 * height):
            f1, f2, pelvis = a, b, anc
            break
    if pelvis is None:
        raise StructureError("no pair of legs")
    legs = [_path(parents, pelvis, f) for f in (f1, f2)]
    leg_joints = [_limb(pos, chain) for chain in legs]
    if min(h[pelvis] - h[k[2]] for k in leg_joints) < 0.25 * height:
        raise StructureError("the legs do not hang below the hips")

    # head: the highest leaf outside the legs
    leg_set = {j for chain in legs for j in chain}
    upper = [j for j in leaves if j not in leg_set]
    if not upper:
        raise StructureError("nothing above the hips")
    head_leaf = max(upper, key=lambda j: h[j])
    if h[head_leaf] - h[pelvis] < 0.2 * height:
        raise StructureError("no head above the hips")

    # left/right: toes point forward; left = up x forward
    fwd = np.zeros(3)
    for chain, (_, _, ankle) in zip(legs, leg_joints):
        after = chain[chain.index(ankle) + 1:]
        if after:
            d = pos[after[-1]] - pos[ankle]
            fwd += d - (d @ u) * u
    if np.linalg.norm(fwd) < 1e-6 * height:
        fwd = np.asarray(forward, dtype=np.float64) - (np.asarray(forward) @ u) * u
    fwd = fwd / np.linalg.norm(fwd)
    left = np.cross(u, fwd)

    # hands: the outermost leaves on each side (not legs, not the head), meeting at the chest
    spine_path = _path(parents, pelvis, head_leaf) if pelvis in _ancestors(parents, head_leaf) else []
    rest = [j for j in upper if j != head_leaf and pelvis in _ancestors(parents, j)]
    lat = {j: pos[j] @ left for j in rest}
    hands = {}
    if rest:
        lh, rh = max(rest, key=lat.get), min(rest, key=lat.get)
        if lat[lh] - lat[rh] > 0.15 * height:
            hands = {"left": lh, "right": rh}
    chest = _lca(parents, hands["left"], hands["right"]) if hands else None
    if chest is not None and chest not in spine_path:
        chest = None  # arms that do not hang off the spine: map the spine and legs only
        hands = {}

    out: dict[str, int] = {"pelvis": pelvis}
    sides = {}
    for chain, joints in zip(legs, leg_joints):
        side = "left" if (pos[joints[0]] - pos[pelvis]) @ left > 0 else "right"
        sides[side] = (chain, joints)
    if len(sides) != 2:
        raise StructureError("both legs are on the same side")
    for side, (chain, (hip, knee, ankle)) in sides.items():
        out[f"{side}_hip"], out[f"{side}_knee"], out[f"{side}_ankle"] = hip, knee, ankle
        after = chain[chain.index(ankle) + 1:]
        if after:
            out[f"{side}_foot"] = after[0]

    spine = spine_path[: spine_path.index(chest) + 1] if chest is not None else spine_path[:-1]
    if chest is not None:
        out["spine3"] = chest
        below = spine[:-1]
        if below:
            out["spine1"] = below[0]
        if len(below) >= 2:
            out["spine2"] = below[len(below) // 2] if len(below) > 2 else below[1]
        neck_chain = spine_path[spine_path.index(chest) + 1:]
        if neck_chain:
            out["neck"] = neck_chain[0]
            rest_chain = neck_chain[1:]
            # the head is where the chain branches (eyes, jaw), else the joint below the top end
            branching = [j for j in rest_chain if len(kids[j]) >= 2]
            if branching:
                out["head"] = branching[0]
            elif len(rest_chain) >= 2:
                out["head"] = rest_chain[-2]
            elif rest_chain:
                out["head"] = rest_chain[0]
        for side, hand in hands.items():
            arm = _path(parents, chest, hand)
            joints = _arm(pos, arm, kids, pos[chest], left, height)
            for name, j in zip(("collar", "shoulder", "elbow", "wrist"), joints):
                if j is not None:
                    out[f"{side}_{name}"] = j
    elif spine:
        out["spine1"] = spine[0]
    names = skeleton.names
    return {k: names[v] for k, v in out.items()}
