"""Only the compiled part of srnsz, the shipped folders and the package layout live here; everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithAssets(build_py):
    """Copies the top-level configs/ and pretrained/ into the built package (srnsz/_assets/), so a wheel carries
    them; a checkout or an editable install reads them in place (srnsz.assets)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name in ("configs", "pretrained"):
            target = Path(self.build_lib) / "srnsz" / "_assets" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(HERE / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


# The context-mixing coder's inner loop (srnsz/coding/_mixing.c), loaded with ctypes by srnsz.coding.context_mixing,
# the context details (srnsz/coding/_details.c), the spline predictions (srnsz/decomposition/_interpolation.c) and the
# quantizer (srnsz/_quantizer.c): floating point that must match numpy's, so no fused multiply-adds.
setup(ext_modules=[Extension("srnsz.coding._mixing", ["srnsz/coding/_mixing.c"], extra_compile_args=["-O3"]),
                   Extension("srnsz.coding._details", ["srnsz/coding/_details.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off"]),
                   Extension("srnsz.decomposition._interpolation", ["srnsz/decomposition/_interpolation.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off"]),
                   Extension("srnsz._quantizer", ["srnsz/_quantizer.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off"])],
      cmdclass={"build_py": BuildWithAssets},
      # networks/ and training/ are top-level folders of the repository (the design's layout) that install inside
      # srnsz, so that site-packages gains no generic top-level names
      packages=[*find_packages(include=["srnsz", "srnsz.*"]), "srnsz.networks", "srnsz.training"],
      package_dir={"srnsz.networks": "networks", "srnsz.training": "training"})
