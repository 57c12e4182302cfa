"""Fixtures for fetch tests: a loopback HTTP server, test-only cards built in code, fast retry settings."""

from __future__ import annotations

import pytest
from loopback_server import LoopbackServer

from edgezoo import zoo
from edgezoo.zoo.schema import ModelCard


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    # Backoff 10 ms: retry tests must not sleep for seconds. The timeout only matters if a test hangs.
    monkeypatch.setenv("EDGEZOO_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("EDGEZOO_FETCH_ATTEMPTS", "4")
    monkeypatch.setenv("EDGEZOO_FETCH_TIMEOUT", "10")


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def in_zoo(monkeypatch):
    """Put test cards into the zoo so the CLI (`edgezoo fetch ID`) finds them."""
    def install(*cards: ModelCard) -> None:
        monkeypatch.setattr(zoo, "all_cards", lambda: tuple(cards))
    return install
