"""Bone maps found from a skeleton's shape when its names are unknown."""
import dataclasses

import numpy as np
import pytest

from inference.retargeting.automap import StructureError, map_by_structure
from inference.body.bvh import read_bvh
from inference.retargeting.retarget import RetargetError, bvh_to_canonical, detect_map
from inference.body.skeleton import CANONICAL, Skeleton

ARMS_LEGS = [f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]


def _scramble(motion):
    """The same motion with meaningless joint names."""
    names = tuple(f"bone{i:02d}" for i in range(len(motion.skeleton)))
    sk = Skeleton(names, motion.skeleton.parents, motion.skeleton.offsets, motion.skeleton.rest_rotations)
    return dataclasses.replace(motion, skeleton=sk), dict(zip(motion.skeleton.names, names))


@pytest.mark.parametrize("variant", ["bvh_cgspeed/02_01.bvh", "bvh_daz/10_03.bvh", "bvh_max_scaled/131_01.bvh",
                                     "bvh_from_fbx/07_01.bvh", "bvh_daz_scaled/60_01.bvh"])
def test_shape_map_agrees_with_the_name_map_on_cmu_skeletons(cmu_dir, variant):
    motion = read_bvh(cmu_dir / variant)
    sk, _, _ = motion.with_end_sites()
    by_name = detect_map(sk.names).joints
    found = None
    for up in ("Y", "Z"):
        try:
            found = map_by_structure(sk, up)
            break
        except StructureError:
            continue
    assert found is not None
    for joint in ["pelvis", *ARMS_LEGS]:
        assert found[joint] == by_name[joint], joint
    agree = sum(found.get(k) == v for k, v in by_name.items())
    assert agree >= len(by_name) - 1, {k: (found.get(k), v) for k, v in by_name.items() if found.get(k) != v}


def test_canonical_skeleton_maps_onto_itself():
    assert map_by_structure(CANONICAL, "Z") == {n: n for n in CANONICAL.names}


def test_renamed_bvh_converts_like_the_original(bandai_bvh, cmu_dir):
    for path in (bandai_bvh, cmu_dir / "bvh_cgspeed/02_01.bvh"):
        motion = read_bvh(path).slice(0, 40)
        renamed, _ = _scramble(motion)
        a, b = bvh_to_canonical(motion), bvh_to_canonical(renamed)
        # Bandai's zero pose lies along X: its shape is read from the first frame instead
        assert np.abs(a.positions() - b.positions()).max() < 0.05, path.name


def test_non_humanoid_shapes_are_refused():
    tentacle = Skeleton(tuple(f"s{i}" for i in range(5)), (-1, 0, 1, 2, 3), np.tile([0.0, 0.0, 0.2], (5, 1)))
    with pytest.raises(StructureError):
        map_by_structure(tentacle, "Z")
    with pytest.raises(RetargetError, match="humanoid"):
        detect_map(tentacle.names, up="Z", skeleton=tentacle)
    # a body whose "legs" are arm-length stubs
    stubby = Skeleton(("root", "l", "r", "head"), (-1, 0, 0, 0),
                      np.array([[0, 0, 1.0], [0.1, 0, -0.05], [-0.1, 0, -0.05], [0, 0, 0.6]]))
    with pytest.raises(StructureError):
        map_by_structure(stubby, "Z")


@pytest.mark.parametrize("bone_map", __import__("inference.retargeting.retarget", fromlist=["x"]).builtin_maps(), ids=lambda m: m.name)
def test_every_builtin_map_is_found_for_a_rig_with_its_names(bone_map):
    """A canonical-shaped armature named the way the map says is detected as that rig type."""
    from inference.retargeting.retarget import RestAlignment

    rename = {v: k for k, v in bone_map.joints.items()}
    named = {k: v for k, v in bone_map.joints.items()}
    names = tuple(named.get(n, f"extra_{n}") for n in CANONICAL.names)
    sk = Skeleton(names, CANONICAL.parents, CANONICAL.offsets)
    found = detect_map(sk.names, up="Z", skeleton=sk)
    assert {k: v for k, v in found.joints.items()} == {k: v for k, v in named.items() if v in names}
    assert len(set(bone_map.joints.values())) == len(bone_map.joints), "one bone per role"
    align = RestAlignment.build(sk, found)
    assert (align.mapping >= 0).sum() == len(rename)


def test_names_that_half_match_but_miss_the_pelvis_fall_back_to_the_shape(cmu_dir):
    """A CMU skeleton whose hip bone was renamed: most names match the CMU map, the pelvis does not;
    the skeleton's shape maps it (it used to be refused: "missing: pelvis")."""
    motion = read_bvh(cmu_dir / "bvh_cgspeed/02_01.bvh").slice(0, 40)
    sk = motion.skeleton
    names = tuple("CharacterRoot" if n == "Hips" else n for n in sk.names)
    renamed = dataclasses.replace(motion, skeleton=Skeleton(names, sk.parents, sk.offsets, sk.rest_rotations))
    full, _, _ = renamed.with_end_sites()
    by_name = detect_map(read_bvh(cmu_dir / "bvh_cgspeed/02_01.bvh").with_end_sites()[0].names)
    assert by_name.coverage(full.names) >= 0.5  # the names do half match
    found = detect_map(full.names, skeleton=full)
    assert found.joints["pelvis"] == "CharacterRoot"
    a, b = bvh_to_canonical(motion), bvh_to_canonical(renamed)
    assert np.abs(a.positions() - b.positions()).max() < 1e-6
