"""`python -m lossdsl` runs the command line."""

from lossdsl.console import entry

entry()
