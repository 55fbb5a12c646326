"""Where each component of an application runs: the deployment plan, and reading it back from a
compiled scenario (see :mod:`.app`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .app import Component, Deploy
from .call_tree import ComponentWork
from .model_base import CLIENT
from .problems import Loc, Problems

if TYPE_CHECKING:
    from .model import Scenario


# -- the plan: which component goes where ---------------------------------------------------
@dataclass(frozen=True)
class Deployment:
    """Where each component runs. ``services`` maps each deployed service to its components
    (application order); ``host`` maps each component to its service; ``entries`` gives the
    components a service's visits can start at (from workloads and other services' calls) and
    ``entry`` the first of them."""

    style: str
    services: dict[str, list[str]]
    host: dict[str, str]
    entry: dict[str, str]
    entries: dict[str, list[str]] | None = None   # every component a service is entered at

    def resolve(self, name: str) -> str | None:
        """The deployed service of a component or service name, or None."""
        if name in self.host:
            return self.host[name]
        return name if name in self.services else None


def bad_name(name: str) -> bool:
    return name == CLIENT or "->" in name or not name.strip()


def plan_services(names: list[str], deploy: Deploy, problems: Problems) -> dict[str, list[str]]:
    """Deployed service -> members (``names`` are the components), checking the groups."""
    if deploy.style == "monolith":
        if deploy.groups is not None:
            problems.add(("deploy", "groups"), "groups apply to style groups, not monolith")
        name = deploy.name or "monolith"
        if bad_name(name):
            problems.add(("deploy", "name"), f"{name!r} cannot be a service name (reserved or empty)")
        return {name: names}
    if deploy.name is not None:
        problems.add(("deploy", "name"), f"name applies to style monolith, not {deploy.style}")
    if deploy.style == "microservices":
        if deploy.groups is not None:
            problems.add(("deploy", "groups"), "groups apply to style groups, not microservices")
        return {c: [c] for c in names}
    return _plan_groups(names, deploy.groups or {}, problems)


def _plan_groups(names: list[str], groups: dict[str, list[str]], problems: Problems
                 ) -> dict[str, list[str]]:
    """Style groups: each group a service, each component left out of every group deployed
    alone; services in the order of their first component in the application."""
    placed: dict[str, tuple[str, int]] = {}
    out: dict[str, list[str]] = {}
    for g, members in groups.items():
        if bad_name(g):
            problems.add(("deploy", "groups", g), f"{g!r} cannot be a service name (reserved or empty)")
        if not members:
            problems.add(("deploy", "groups", g), "expected at least one component")
        out[g] = _place_members(g, members, names, placed, problems)
    for g in groups:
        if g in names and g in placed and placed[g][0] != g:
            problems.add(("deploy", "groups", g),
                         f"group {g!r} is named like component {g!r}, which is in group "
                         f"{placed[g][0]!r}; rename the group")
    for c in names:
        if c not in placed:
            if c in out:
                problems.add(("deploy", "groups", c),
                             f"group {c!r} is named like component {c!r}, which is not in it; add "
                             "the component to the group or rename the group")
            else:
                out[c] = [c]  # left out of every group: deployed alone
    # order services by their first component in the application
    first = {s: min((names.index(c) for c in ms), default=len(names)) for s, ms in out.items()}
    return dict(sorted(out.items(), key=lambda kv: first[kv[0]]))


def _place_members(g: str, members: list[str], names: list[str],
                   placed: dict[str, tuple[str, int]], problems: Problems) -> list[str]:
    """The components group ``g`` deploys (each known and in no earlier group), recording each
    one's (group, index) in ``placed``."""
    known = ", ".join(names)
    out: list[str] = []
    for j, c in enumerate(members):
        if c not in names:
            problems.add(("deploy", "groups", g, j), f"unknown component {c!r}; components are: {known}")
        elif c in placed:
            g0, j0 = placed[c]
            where = f"deploy.groups.{g0}[{j0}]"
            problems.add(("deploy", "groups", g, j),
                         f"{c!r} is already in group {g0!r} ({where}); a component is deployed once")
        else:
            placed[c] = (g, j)
            out.append(c)
    return out


def entry_points(app: dict[str, Component], services: dict[str, list[str]], host: dict[str, str],
             targets: list[tuple[Loc, str]]) -> dict[str, list[str]]:
    """The components each deployed service is entered at (from workloads and from calls of
    other services), in application order; a service nobody enters gets its root component."""
    order = {c: i for i, c in enumerate(app)}
    seen: dict[str, set[str]] = {svc: set() for svc in services}
    for _, comp in targets:
        seen[host[comp]].add(comp)
    for name, comp in app.items():
        for _, call, _ in comp.flat_calls():
            if call.service in host and host[call.service] != host[name]:
                seen[host[call.service]].add(call.service)
    entries: dict[str, list[str]] = {}
    for svc, members in services.items():
        if seen[svc]:
            entries[svc] = sorted(seen[svc], key=order.__getitem__)
            continue
        called = {c.service for m in members for _, c, _ in app[m].flat_calls()
                  if c.service in members}
        roots = [m for m in members if m not in called]
        entries[svc] = [(roots or members)[0]]
    return entries



# -- reading a compiled scenario back -------------------------------------------------------
def deployment(spec: Any) -> Deployment | None:
    """Where each component of a scenario's app runs; None for a scenario without ``app``.

    Examples
    --------
    >>> d = deployment({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "microservices"})
    >>> d.host
    {'web': 'web', 'db': 'db'}
    """
    s = _scenario(spec)
    if s.app is None:
        return None
    problems = Problems({}, None, {})
    services = plan_services(list(s.app), s.deploy, problems)
    host = {c: n for n, ms in services.items() for c in ms}
    works = {n: svc.service_time for n, svc in s.services.items()
             if isinstance(svc.service_time, ComponentWork)}
    entry = {n: w.entry for n, w in works.items()}
    entries = {n: list(w.program.steps) if w.program is not None else [w.entry]
               for n, w in works.items()}
    return Deployment(s.deploy.style, services, host, entry, entries)


def _scenario(spec: Any) -> Scenario:
    from .load import load

    return load(spec)
