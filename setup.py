# cffi can only be wired into setuptools here; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["build.py:ffibuilder"])
