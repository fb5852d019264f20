"""Small utilities every part may use, and that use nothing of ours: how sizes read (units), where our
files live and what we own (paths), Numerai's platform against this machine's (machine), Arrow without
pyarrow's pandas probe (arrow), the allocators' promptness (memory), live terminal output (console), and fragments made into sentences (text)."""
