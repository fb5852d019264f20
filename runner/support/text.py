"""How our messages read: fragments made into sentences."""

from __future__ import annotations


def sentence(text: str) -> str:
    """A message fragment as a sentence: capitalised, with a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")
