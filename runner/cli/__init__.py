"""The command line (click): one module per command group, `main` holding the entry point.

Click commands only: each parses what the user typed, calls a use case (runner.usecases) and says what came
back; common.py holds what every command shares (exit codes, usage errors, the engine), judging.py how one
judged pickle reads (shared by run and upload)."""
