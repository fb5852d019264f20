"""`python -m runner` is the same as the `numerai-sandbox` command."""

from .cli.main import main

main()
