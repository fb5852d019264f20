"""What a pickle is, read statically: nothing in it is imported, called or unpickled on the host.

analysis      the report (`inspect_pickle`) and the image choice for `--python auto`
pickle_ops    the opcode walker with its symbolic stack
pyversions    which Python compiled the code objects it rebuilds
version_tables  the generated evidence tables (opcodes, cloudpickle releases, stdlib)
filetype      what a file that is not a pickle looks like
"""

from .analysis import (Inspection, choose_python, code_candidates, compatible_pythons, inspect_pickle,
                       mismatch_message, numerai_additions, recorded_releases, render, static_note)

__all__ = ["Inspection", "choose_python", "code_candidates", "compatible_pythons", "inspect_pickle",
           "mismatch_message", "numerai_additions", "recorded_releases", "render", "static_note"]
