"""Only the compiled part of srnsz lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

# The context-mixing coder's inner loop (srnsz/_mixing.c), loaded with ctypes by srnsz.context_mixing.
setup(ext_modules=[Extension("srnsz._mixing", ["srnsz/_mixing.c"], extra_compile_args=["-O2"])])
