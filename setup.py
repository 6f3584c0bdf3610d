"""Only the compiled part of srnsz lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

# The context-mixing coder's inner loop (srnsz/coding/_mixing.c), loaded with ctypes by srnsz.coding.context_mixing.
setup(ext_modules=[Extension("srnsz.coding._mixing", ["srnsz/coding/_mixing.c"], extra_compile_args=["-O2"])])
