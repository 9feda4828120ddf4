"""Small, complete bots; each file runs on its own.

    DISCORD_TOKEN=... python examples/<name>.py

Each one also exposes ``build_bot()`` and its session classes, so that
``tests/test_examples.py`` can play it in the offline Discord without a token.
"""
