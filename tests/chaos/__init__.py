"""The chaos run: ``python -m tests.chaos.run`` (see run.py)."""
