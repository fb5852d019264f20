"""The command line (click): one module per command group, `main` holding the entry point."""
