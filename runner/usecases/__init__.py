"""What a user can do — the one layer both front ends (the command line, runner.api) call.

run_one.py   judge one pickle, then keep it (HTML page, run history, JSON report): run, upload, run_pickle
check.py     many pickles at once, each judged as run_one judges it (check_many), on this engine or a cluster
shell.py     an interactive Python in the sandbox a run would use
upload.py    upload only a Success, into Numerai's image for its Python · uploads.py what Numerai said since
inspect.py   what a pickle is, read without running it
images.py    fetch (the only networked step), build offline, list, remove, push; Numerai's pins
data.py      fetch Numerai's round, or write synthetic data
history.py   the run history: one record per run, found, listed, pruned
doctor.py    the machine's checkup: findings with their fixes
engine.py    the Docker engine for the commands that need it, and clean
inputs.py    option values and input files judged before anything starts
vocabulary.py  the words front ends name and the values they get back (RunRequest, Limits, Report, ...)

The front ends import nothing below this layer but runner.support (tests/test_layout.py holds them to it):
they parse what the user typed, call a use case, and say what came back.
"""
