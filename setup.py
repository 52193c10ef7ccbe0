# cffi can only be wired into setuptools here; everything else is in pyproject.toml.
from setuptools import setup

# The extension uses the stable ABI (cffi's default): one wheel serves CPython 3.10 and later.
setup(cffi_modules=["build.py:ffibuilder"], options={"bdist_wheel": {"py_limited_api": "cp310"}})
