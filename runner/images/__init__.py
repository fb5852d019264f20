"""The per-Python images: which packages (pins), from which base, out of which wheel cache, in which store.

pins        profiles (auto, standard, full): what goes into an image
numerai     Numerai's vendored pin lists and the module map generated from the wheels (offline)
upstream    numerai-predict's current pins, to check and update the vendored ones (online)
pinfiles    the pin-file format, and where images/ lives
pypi        wheel sizes and metadata read from PyPI by range requests (online)
bases       root filesystems with CPython, resolved once while online
wheelhouse  the local wheel cache, the only part filled from the network
sourcebuild wheels a pinned release lacks for a Python (3.14's scikit-learn), built once during fetch
venv        the same pins in a virtual environment of a host Python (the process sandbox), made offline by uv
store       build offline, find, list and remove our images in the engine (imports the Docker SDK)
"""

from .pins import DEFAULT_PYTHON, PROFILES, SUPPORTED_PYTHONS, PinError, PinSet, pin_set

__all__ = ["DEFAULT_PYTHON", "PROFILES", "SUPPORTED_PYTHONS", "PinError", "PinSet", "pin_set"]
