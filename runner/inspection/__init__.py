"""What a pickle is, read statically: nothing in it is imported, called or unpickled on the host.

The walk (the stream, opcode by opcode, on a symbolic stack):
  pickle_ops        the walker: its loop, memo, globals and calls; `walk_file`
  opcode_values     its handlers for strings, bytes and numbers
  opcode_containers its handlers for tuples, lists, dicts, sets and stack moves
  stream_reader     buffered reading that seeks over large payloads
  symbols           what the walker holds instead of objects (Global, Call, Blob), the Walk, the Limits
What it says (each question asked once of the facts):
  facts             what the walk saw, gathered once: code objects, cloudpickle state, modules, payload formats
  provenance        the serializer and the Python that made it (pyversions reads code objects;
                    version_tables holds the generated evidence)
  callables         the callable Numerai would call: kind, name, parameters
  fit               the modules, recorded library versions and code against each image's pins
  rules             the risk tables and the per-library version rules
  risks             warnings (what it could do) and problems (what Numerai's loader will meet)
  report            the report's typed parts (Inspection, ImageFit, ...)
  analysis          `inspect_pickle`: the walk, then each part, into one Inspection
  choice            the image Python for `--python auto`, an early mismatch, what a run takes from it
  render            the report as text
  columns, filetype the live-data columns it names; what a file that is not a pickle looks like
"""

from .analysis import inspect_pickle
from .choice import (choose_python, code_candidates, compatible_pythons, mismatch_message, numerai_additions,
                     recorded_releases, static_note)
from .render import render
from .report import Inspection

__all__ = ["Inspection", "choose_python", "code_candidates", "compatible_pythons", "inspect_pickle",
           "mismatch_message", "numerai_additions", "recorded_releases", "render", "static_note"]
