"""Serve interactions over HTTP: Discord's signed POSTs to a web endpoint.

Needs the ``http`` extra (PyNaCl): ``pip install nyx-sessions[http]``.
:func:`create_app` turns a discord.py client into an aiohttp application; run several
of them behind a load balancer, with sessions in Redis, and any worker serves any click.
"""

from __future__ import annotations

from .app import INTERACTIONS_APP, InteractionsApp, create_app
from .signature import SignatureVerifier

__all__ = ["INTERACTIONS_APP", "InteractionsApp", "SignatureVerifier", "create_app"]
