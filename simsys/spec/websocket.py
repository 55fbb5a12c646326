"""Scenario keys for WebSockets and polling (issue 5). Placeholder: extended by the WebSocket work."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .distributions import Distribution, PosDuration
from .model_base import Rate, Strict


class WebSocketConfig(Strict):
    """``services.<name>.websocket``: this service accepts WebSocket upgrades."""

    max_connections: int = Field(50000, ge=1)
    handshake: PosDuration | float = 0.0


class WebSocketWorkload(Strict):
    """Clients that open WebSocket connections to ``target``."""

    type: Literal["websocket"]
    target: str
    connect_rate: Rate | None = None
    lifetime: Distribution | None = None
    name: str | None = None


class PollingWorkload(Strict):
    """Clients that poll ``target`` every ``interval`` for server messages."""

    type: Literal["polling"]
    target: str
    interval: PosDuration
    name: str | None = None


def websocket_problems(s: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field checks of the WebSocket keys, as (field path, message) pairs."""
    return []
