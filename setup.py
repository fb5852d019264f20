"""Which packages ship: every package under runner/ (found, so a new part needs no entry), plus the
top-level images/ folder as runner.image_definitions, so an installed numerai-sandbox can build its
images. Everything else about the project is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["runner", "runner.*"]) + ["runner.image_definitions"],
      package_dir={"runner.image_definitions": "images"})
