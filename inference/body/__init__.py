"""Motion data: rotations (quat), the canonical skeleton and forward kinematics, clips, BVH files."""
