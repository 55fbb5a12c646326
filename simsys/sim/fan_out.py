"""Parallel fan-out with a quorum: every member call at once, the caller resumed when enough have
answered ok (see :mod:`.patterns`)."""

from __future__ import annotations

from typing import Any

from ..records import OK
from .patterns import CallState, Guard
from .visits import Job


class GroupState:
    """One fan-out in progress: answers still to come and ok answers needed."""

    __slots__ = ("owner", "parent", "need", "left", "ok", "done")

    def __init__(self, owner: Parallel, parent: Job, need: int, left: int):
        self.owner = owner
        self.parent = parent
        self.need = need
        self.left = left
        self.ok = 0
        self.done = False


class Parallel:
    """Fan-out: every member call at once; the caller goes on when ``quorum`` have answered
    ok (default: all), and fails as soon as that can no longer happen."""

    def __init__(self, members: list[Guard], quorum: int | None, caller: Any):
        self.members = members
        self.quorum = quorum
        self.caller = caller
        self.probability = 1.0
        self.coin = None

    def call(self, parent: Job) -> None:
        chosen = [m for m in self.members if m.coin is None or m.coin() < m.probability]
        need = len(chosen) if self.quorum is None else min(self.quorum, len(chosen))
        if not chosen or need == 0:
            self.caller.resume(parent)
            return
        group = GroupState(self, parent, need, len(chosen))
        for member in chosen:
            member.call(parent, group)

    def member_done(self, st: CallState, status: int) -> None:
        group: GroupState = st.group
        group.left -= 1
        if group.done or group.parent.dead:
            return
        if status == OK:
            group.ok += 1
            if group.ok >= group.need:
                group.done = True
                self.caller.resume(group.parent)
        elif group.ok + group.left < group.need:
            group.done = True
            self.caller.abort(group.parent, status)
