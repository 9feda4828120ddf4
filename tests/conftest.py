"""Shared pytest configuration; fixtures that several test modules need go here."""

from __future__ import annotations
