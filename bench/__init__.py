"""Benchmarks of nyx-sessions against discord.py's own views; run ``python -m bench``."""
