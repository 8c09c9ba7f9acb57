"""`make build`: validate the extension and build its zip into dist/ with Blender's own
extension tool (shipped inside the bpy wheel as addons_core/bl_pkg/cli/blender_ext.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def blender_ext_cli() -> Path:
    import bpy  # noqa: F401 - only to find Blender's scripts folder

    scripts = Path(bpy.utils.resource_path("LOCAL")) / "scripts"
    hits = sorted(scripts.glob("addons_core/bl_pkg/cli/blender_ext.py"))
    if not hits:
        sys.exit("blender_ext.py not found inside the bpy package")
    return hits[-1]


def main() -> int:
    cli = str(blender_ext_cli())
    out = REPO / "dist"
    out.mkdir(exist_ok=True)
    subprocess.run([sys.executable, cli, "validate", str(REPO)], check=True)
    subprocess.run([sys.executable, cli, "build", "--source-dir", str(REPO), "--output-dir", str(out)], check=True)
    zips = sorted(out.glob("marionette-*.zip"))
    for z in zips:
        subprocess.run([sys.executable, cli, "validate", str(z)], check=True)
        print(f"built and validated {z.relative_to(REPO)} ({z.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
