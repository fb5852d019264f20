"""numerai-sandbox: run a Numerai model pickle the way Numerai's Model Upload does, before uploading it."""

__version__ = "0.1.0"
