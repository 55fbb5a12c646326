"""The compiler: ``app:`` and ``deploy:`` into checked ``services:`` (see :mod:`.app`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from .app import FROM_APP, Component, Deploy
from .app_plan import Deployment, bad_name, entry_points, plan_services
from .call_tree import (
    COIN_STEP,
    FAN_OUT,
    FAN_OUT_STEP,
    FAN_OUT_WORK_STEP,
    REMOTE_STEP,
    WORK,
    WORK_STEP,
    ComponentWork,
    Node,
    Program,
    Remote,
)
from .chaos import Failures
from .model import Call, Memory, Parallel, Service, find_cycle
from .model_base import CLIENT
from .problems import Loc, Problems


def _flatten(app: dict[str, Component], entry: str, members: set[str], host: dict[str, str],
             remotes: dict[tuple[str, str], int]) -> tuple[tuple[Any, ...], ...]:
    """The flat steps of a visit entered at ``entry`` (see :class:`Program`); ``remotes`` maps
    (caller, callee) to the remote call's index, growing as calls are met. A fan-out is all
    in-process (one step of work, :func:`fan_out_sampler`) or all remote (checked before)."""
    steps: list[Any] = []

    def walk(comp: str, in_process: bool) -> None:
        steps.append((WORK_STEP, comp, in_process))
        for step in app[comp].calls:
            if isinstance(step, Parallel):
                if all(c.service in members for c in step.parallel):
                    kids = tuple((c.probability, _tree(app, c.service, members))
                                 for c in step.parallel)
                    steps.append((FAN_OUT_WORK_STEP, comp, (FAN_OUT, step.quorum, kids)))
                else:
                    ks = tuple(remotes.setdefault((comp, c.service), len(remotes))
                               for c in step.parallel)
                    steps.append((FAN_OUT_STEP, ks, step.quorum))
                continue
            call = step
            if call.service in members:
                if call.probability < 1.0:
                    at = len(steps)
                    steps.append(None)
                    walk(call.service, True)
                    steps[at] = (COIN_STEP, comp, call.service, call.probability, len(steps))
                else:
                    walk(call.service, True)
            else:
                steps.append((REMOTE_STEP, remotes.setdefault((comp, call.service), len(remotes))))

    walk(entry, False)
    return tuple(steps)


def _one_sum_will_do(steps: tuple[tuple[Any, ...], ...]) -> bool:
    """Can a visit be one stretch of work followed by its remote calls, each taken on its own
    coin? Yes when no work follows a remote call and no remote call hangs on an optional
    in-process call (its chance would otherwise be tied to that call's coin)."""
    seen_remote = False
    coin_until = -1
    for i, step in enumerate(steps):
        if step[0] == COIN_STEP:
            coin_until = max(coin_until, step[4])
        elif step[0] in (REMOTE_STEP, FAN_OUT_STEP):
            if i < coin_until:
                return False
            seen_remote = True
        elif seen_remote:
            return False
    return True


def _leaves(app: dict[str, Component], comp: str, members: set[str]) -> str | None:
    """A component outside ``members`` that ``comp``'s in-process subtree calls, or None."""
    for _, call, _ in app[comp].flat_calls():
        if call.service not in members:
            return call.service
        far = _leaves(app, call.service, members)
        if far is not None:
            return far
    return None


def _check_fan_outs(app: dict[str, Component], plan: Deployment, problems: Problems) -> None:
    """A fan-out must be all in-process (threads of one worker, doing local work only) or all
    remote in the deployment: the simulator does not mix the two."""
    for name, comp in app.items():
        here = plan.host[name]
        members = set(plan.services[here])
        for i, step in enumerate(comp.calls):
            if not isinstance(step, Parallel):
                continue
            local = [c.service for c in step.parallel if c.service in members]
            if local and len(local) < len(step.parallel):
                away = [c.service for c in step.parallel if c.service not in members]
                problems.add(("app", name, "calls", i),
                             f"in this deployment the fan-out calls {', '.join(local)} in-process "
                             f"and {', '.join(away)} in other services; a fan-out must be all "
                             "in-process or all remote: group its members together")
                continue
            for member in local:
                far = _leaves(app, member, members)
                if far is not None:
                    problems.add(("app", name, "calls", i),
                                 f"in this deployment the in-process fan-out's member {member!r} "
                                 f"calls {far!r} in another service; an in-process fan-out runs "
                                 "on threads of one worker and does only local work")
                    break


def _tree(app: dict[str, Component], comp: str, members: set[str]) -> Node:
    calls: list[Any] = []
    for step in app[comp].calls:
        if isinstance(step, Parallel):
            if all(c.service in members for c in step.parallel):
                calls.append((FAN_OUT, step.quorum, tuple(
                    (c.probability, _tree(app, c.service, members)) for c in step.parallel)))
        elif step.service in members:
            calls.append((step.probability, _tree(app, step.service, members)))
    return (comp, tuple(calls))


def _largest(values: Iterable[int | None]) -> int | None:
    vs = [v for v in values if v is not None]
    return max(vs) if vs else None


def _compile_service(name: str, members: list[str], app: dict[str, Component], deploy: Deploy,
                     plan: Deployment, clients: dict[int, str], problems: Problems) -> Service:
    comps = [app[m] for m in members]
    entry = plan.entry[name]
    over = dict(deploy.services.get(name) or {})
    where = ("deploy", "services", name)
    for key in FROM_APP:
        if key in over:
            problems.add((*where, key), f"{key} of a deployed service comes from its components "
                         f"({', '.join(members)}); set it under app")
            del over[key]
    limit = over.pop("memory_limit", None)
    member_set = set(members)
    entries = plan.entries[name]
    index: dict[tuple[str, str], int] = {}
    steps = {e: _flatten(app, e, member_set, plan.host, index) for e in entries}
    remotes = []
    for (caller, callee), _ in sorted(index.items(), key=lambda kv: kv[1]):
        call = next(c for _, c, _ in app[caller].flat_calls() if c.service == callee)
        # the call's own keys (timeout, retry, ...) travel with it; in-process calls ignore them
        remotes.append(Remote(caller, callee, plan.host[callee], call.probability,
                              call.model_copy(update={"service": plan.host[callee]})))
    targets = [r.service for r in remotes]
    simple = (len(entries) == 1 and _one_sum_will_do(steps[entry])
              and len(set(targets)) == len(targets))
    # Edges of the deployed graph: one per service called. A service that runs programs keeps
    # the calls themselves (with their keys) in its program; its edges carry only the links.
    calls: list[Call | Parallel] = [Call(service=t) for t in dict.fromkeys(targets)]
    if simple:  # the calls in the order the visit makes them, fan-outs kept together
        calls = []
        for step in steps[entry]:
            if step[0] == REMOTE_STEP:
                calls.append(remotes[step[1]].call)
            elif step[0] == FAN_OUT_STEP:
                calls.append(Parallel(parallel=[remotes[k].call for k in step[1]],
                                      quorum=step[2]))
    program = None if simple else Program(
        steps=steps, works={m: app[m].service_time for m in members}, remotes=tuple(remotes),
        in_process_call=deploy.in_process_call, serialization=deploy.serialization,
        default=entry)
    limits = [c.memory.limit for c in comps]
    if limit is None and all(x is not None for x in limits):
        limit = deploy.runtime_memory + sum(limits)  # type: ignore[arg-type]
    memory = Memory(
        base=deploy.runtime_memory + sum(c.memory.base for c in comps),
        per_request=sum(c.memory.per_request for c in comps),
        per_connection=sum(c.memory.per_connection for c in comps),
        limit=limit,
    )
    failures = None
    rates = [1.0 / c.failures.mean_time_to_failure for c in comps if c.failures is not None]
    if rates:  # independent exponential failures of the members: the first one downs all
        failures = Failures(mean_time_to_failure=1.0 / sum(rates))
    balancer = app[entry].balancer or next((c.balancer for c in comps if c.balancer), "round_robin")
    work = ComponentWork(
        entry=entry,
        tree=_tree(app, entry, member_set),
        works={m: app[m].service_time for m in members},
        in_process_call=deploy.in_process_call,
        serialization=deploy.serialization,
        remote_calls={r.service: f"{r.caller}->{r.callee}" for r in remotes} if simple else {},
        clients=clients,
        program=program,
    )
    if program is not None and over.get("discipline") == "ps":
        problems.add((*where, "discipline"), f"service {name!r} runs component programs (its "
                     "visits wait on other services between stretches of work), which processor "
                     "sharing cannot; use fifo or lifo, or group its components differently")
        del over["discipline"]
    fields: dict[str, Any] = {
        "replicas": _largest(c.replicas for c in comps) or 1,
        "workers": _largest(c.workers for c in comps) or 1,
        "queue": _largest(c.queue for c in comps),
        "balancer": balancer,
        "failures": failures,
        "calls": calls,
        "memory": memory,
    }
    if "price" in Service.model_fields:
        fields["price"] = deploy.price
    fields.update(over)
    try:
        svc = Service.model_validate(fields)
    except ValidationError as exc:
        problems.pydantic(exc, where)
        svc = Service.model_validate({k: v for k, v in fields.items() if k not in over})
    return svc.model_copy(update={"service_time": work})


def _is_compiled(svc: Any) -> bool:
    """A service :func:`expand` made (seen again when a compiled scenario is dumped and reloaded)."""
    st = svc.get("service_time") if isinstance(svc, Mapping) else getattr(svc, "service_time", None)
    if isinstance(st, Mapping):
        return st.get("dist") == WORK
    return isinstance(st, ComponentWork)


def _as_plain(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    return value


# -- the entry point ------------------------------------------------------------------------
def expand(data: Mapping[str, Any], source: str | None = None,
           positions: Mapping[Loc, Any] | None = None) -> dict[str, Any]:
    """Compile ``app`` and ``deploy`` into ``services``; other scenarios come back unchanged.

    Returns a new dict (``data`` is not modified) whose ``services`` are checked
    :class:`~simsys.spec.model.Service` objects with :class:`ComponentWork` service times,
    whose workload targets, links, Chaos Monkey targets and faults name deployed services, and
    whose ``app`` and ``deploy`` are the checked models.

    Raises
    ------
    ScenarioError
        Every problem of ``app`` and ``deploy``, each with its field path and file position.

    Examples
    --------
    >>> d = expand({"app": {"web": {"calls": ["db"]}, "db": {}}, "deploy": "monolith",
    ...             "workload": [{"type": "poisson", "rate": 1, "target": "db"}]})
    >>> list(d["services"]), d["workload"][0]["target"]
    (['monolith'], 'monolith')
    """
    if data.get("app") is None and data.get("deploy") is None:  # None: a dumped Scenario's
        return dict(data)
    problems = Problems(data, source, positions or {})
    _require_app_and_deploy(data, problems)
    raw_app, app, deploy = _validate_app_and_deploy(data, problems)
    services_in = data.get("services") or {}
    _check_no_own_services(services_in, problems)
    # Go as far as the valid parts allow, so that every problem is reported at once.
    components = [k for k in raw_app if isinstance(k, str)]
    if not raw_app:
        problems.add(("app",), "expected at least one component")
    if app:
        _check_app(app, components, problems)
    services = plan_services(components, deploy, problems) if deploy is not None and components else {}
    host = {c: s for s, ms in services.items() for c in ms}
    names = ", ".join(components)
    workload, targets = _retarget_workload(data, services_in, components, services, host, names,
                                           problems)
    problems.raise_if_any()
    assert deploy is not None
    plan = _plan(app, deploy, services, host, targets, problems)
    compiled = _compile_services(app, deploy, plan, targets, problems)
    out = dict(data)
    if "links" in data:
        out["links"] = _links(data["links"], plan, names, problems)
    problems.raise_if_any()
    out["services"] = compiled
    if "workload" in data:
        out["workload"] = workload
    _rename_chaos(out, plan)
    out["app"] = app
    out["deploy"] = deploy
    return out


# -- the steps of expand --------------------------------------------------------------------
def _require_app_and_deploy(data: Mapping[str, Any], problems: Problems) -> None:
    """Stop at once when one of ``app`` and ``deploy`` is given without the other."""
    if data.get("app") is None:
        problems.add(("deploy",), "deploy needs an app: to deploy (app: {component: {...}})")
        problems.raise_if_any()
    if data.get("deploy") is None:
        problems.add(("app",), "required key deploy is missing: give deploy: monolith, "
                     "microservices or {groups: {service: [component, ...]}}")
        problems.raise_if_any()


def _validate_app_and_deploy(data: Mapping[str, Any], problems: Problems
                             ) -> tuple[Mapping[Any, Any], dict[str, Component], Deploy | None]:
    """The raw ``app`` mapping ({} when it is not one), its components that are sound on their
    own, and the checked ``deploy`` (None when it is not sound)."""
    raw_app = _as_plain(data["app"])
    valid: dict[str, Component] = {}
    if not isinstance(raw_app, Mapping):
        problems.add(("app",), f"expected a mapping of components, got {raw_app!r}")
        raw_app = {}
    for name, raw in raw_app.items():  # one by one, so the valid ones are checked further
        try:
            valid[str(name)] = Component.model_validate(_as_plain(raw))
        except ValidationError as exc:
            problems.pydantic(exc, ("app", name))
    try:
        deploy = Deploy.model_validate(_as_plain(data["deploy"]))
    except ValidationError as exc:
        problems.pydantic(exc, ("deploy",))
        deploy = None
    return raw_app, valid, deploy


def _check_no_own_services(services_in: Any, problems: Problems) -> None:
    """Services come from the app: any the user wrote besides (not compiled ones) are refused."""
    user_services = ([k for k, v in services_in.items() if not _is_compiled(v)]
                     if isinstance(services_in, Mapping) else ["?"])
    if user_services:
        problems.add(("services",), "give services or app, not both: deploy places the app's "
                     "components in services (set a deployed service's replicas, workers or queue "
                     "under deploy.services.<name>)")


def _retarget_workload(data: Mapping[str, Any], services_in: Any, components: list[str],
                       services: dict[str, list[str]], host: dict[str, str], names: str,
                       problems: Problems) -> tuple[list[Any], list[tuple[Loc, str]]]:
    """The workload with targets naming components moved to their services, and the
    (location, component) each such target entered at."""
    workload = [dict(w) if isinstance(w, Mapping) else w for w in (data.get("workload") or [])]
    targets: list[tuple[Loc, str]] = []
    entered = _entered_before(services_in)
    for i, w in enumerate(workload):
        if not isinstance(w, dict) or not isinstance(w.get("target"), str) or not components:
            continue  # the model reports it
        t = w["target"]
        if t in host:
            targets.append((("workload", i, "target"), t))
            w["target"] = host[t]
        elif host.get(entered.get(t, {}).get(i, "")) == t:  # a dumped scenario, compiled again
            targets.append((("workload", i, "target"), entered[t][i]))
        elif t not in services and t not in components:
            problems.add(("workload", i, "target"), f"unknown component {t!r}; components are: {names}")
    return workload, targets


def _plan(app: dict[str, Component], deploy: Deploy, services: dict[str, list[str]],
          host: dict[str, str], targets: list[tuple[Loc, str]], problems: Problems) -> Deployment:
    """The deployment plan, once its services' overrides and fan-outs are checked."""
    entries = entry_points(app, services, host, targets)
    plan = Deployment(deploy.style, services, host, {s: e[0] for s, e in entries.items()}, entries)
    for name in deploy.services:
        if name not in services:
            problems.add(("deploy", "services", name),
                         f"no deployed service {name!r}; this deployment has: {', '.join(services)}")
    _check_fan_outs(app, plan, problems)
    problems.raise_if_any()
    return plan


def _compile_services(app: dict[str, Component], deploy: Deploy, plan: Deployment,
                      targets: list[tuple[Loc, str]], problems: Problems) -> dict[str, Service]:
    """Every deployed service, each knowing which workload enters it at which component."""
    clients: dict[str, dict[int, str]] = {name: {} for name in plan.services}
    for loc, comp in targets:
        clients[plan.host[comp]][loc[1]] = comp
    compiled = {name: _compile_service(name, members, app, deploy, plan, clients[name], problems)
                for name, members in plan.services.items()}
    _check_service_cycles(compiled, plan, problems)
    return compiled


def _entered_before(services: Any) -> dict[str, dict[int, str]]:
    """Workload entries kept by the compiled services of a dumped scenario (whose workload
    targets already name services): service -> {workload index: component}."""
    out: dict[str, dict[int, str]] = {}
    if isinstance(services, Mapping):
        for name, svc in services.items():
            if _is_compiled(svc):
                st = svc.get("service_time") if isinstance(svc, Mapping) else svc.service_time
                clients = st.get("clients") if isinstance(st, Mapping) else st.clients
                out[name] = {int(k): v for k, v in (clients or {}).items()}
    return out


def _check_app(app: dict[str, Component], names: list[str], problems: Problems) -> None:
    known = ", ".join(names)
    for name in names:
        if bad_name(name):
            problems.add(("app", name), f"{name!r} cannot be a component name (reserved or empty)")
    for name, comp in app.items():
        seen: set[str] = set()
        for i, call, group in comp.flat_calls():
            where: tuple[Any, ...] = ("app", name, "calls", i)
            if group is not None:
                where = (*where, "parallel", group.parallel.index(call))
            if call.service not in names:
                problems.add(where,
                             f"calls unknown component {call.service!r}; components are: {known}")
            elif call.service in seen:
                problems.add(where,
                             f"{call.service!r} is called twice; call each component once "
                             "(use probability for optional calls)")
            seen.add(call.service)
    cycle = find_cycle({n: [c.service for _, c, _ in app[n].flat_calls()] for n in app})
    if cycle:
        problems.add(("app", cycle[0], "calls"), "calls form a cycle: "
                     + " -> ".join(cycle + [cycle[0]]) + " (a request would wait for itself)")


def _check_service_cycles(compiled: dict[str, Service], plan: Deployment,
                          problems: Problems) -> None:
    """Components in a call chain a -> b -> c may not be grouped so that services call each
    other back (a and c together, b apart): a visit would hold a worker of its service while
    waiting on a call that needs another worker of the same service."""
    cycle = find_cycle({n: [c.service for _, c, _ in svc.flat_calls()]
                         for n, svc in compiled.items()})
    if cycle:
        path = " -> ".join([*cycle, cycle[0]])
        problems.add(("deploy", "groups"), f"this grouping makes services call each other back "
                     f"({path}): a visit would wait on its own service's workers; deploy the "
                     "components so that calls between services go one way")


def _links(links: Any, plan: Deployment, names: str, problems: Problems) -> Any:
    """Link keys naming components name their deployed services; in-process pairs are dropped
    (calls inside a service cross no link)."""
    if not isinstance(links, Mapping):
        return links
    out: dict[str, Any] = {}
    where: dict[str, str] = {}
    for key, value in links.items():
        if key == "default" or not isinstance(key, str):
            out[key] = value
            continue
        parts = [p.strip() for p in key.split("->")]
        if len(parts) != 2:
            out[key] = value  # the model reports it
            continue
        source, target = parts
        ends = []
        for end in (source, target):
            if end == CLIENT and end == source:
                ends.append(end)
                continue
            resolved = plan.resolve(end)
            if resolved is None:
                problems.add(("links", key), f"unknown component {end!r}; components are: {names}")
            ends.append(resolved)
        if None in ends:
            continue
        if ends[0] == ends[1]:
            continue  # in-process in this deployment
        new = f"{ends[0]}->{ends[1]}"
        if new in out and _as_plain(out[new]) != _as_plain(value):
            problems.add(("links", key), f"links {where[new]!r} and {key!r} are both the link "
                         f"{new!r} in this deployment, with different settings")
            continue
        out[new] = value
        where[new] = key
    return out


def _rename_chaos(out: dict[str, Any], plan: Deployment) -> None:
    """Chaos Monkey targets, faults and probes may name components: they act on their service."""
    def rename(name: Any) -> Any:
        if not isinstance(name, str):
            return name
        if "->" in name:
            a, _, b = (p.strip() for p in name.partition("->"))
            return f"{plan.resolve(a) or a}->{plan.resolve(b) or b}"
        return plan.resolve(name) or name

    chaos = out.get("chaos")
    if isinstance(chaos, Mapping) and isinstance(chaos.get("monkey"), Mapping):
        monkey = dict(chaos["monkey"])
        if isinstance(monkey.get("targets"), list):
            monkey["targets"] = list(dict.fromkeys(rename(t) for t in monkey["targets"]))
        out["chaos"] = {**chaos, "monkey": monkey}
    if "faults" in out:
        out["faults"] = _rename_faults(out["faults"], rename)
    exp = out.get("experiment")
    if isinstance(exp, Mapping):
        out["experiment"] = _rename_experiment(exp, rename)


def _rename_faults(items: Any, rename: Callable[[Any], Any]) -> Any:
    """Faults (or an experiment's method) with targets and partition groups renamed."""
    if not isinstance(items, list):
        return items
    new = []
    for f in items:
        if isinstance(f, Mapping):
            f = dict(f)
            if "target" in f:
                f["target"] = rename(f["target"])
            if isinstance(f.get("groups"), list):
                f["groups"] = [list(dict.fromkeys(rename(x) for x in g)) if isinstance(g, list)
                               else g for g in f["groups"]]
        new.append(f)
    return new


def _rename_experiment(exp: Mapping[str, Any], rename: Callable[[Any], Any]) -> dict[str, Any]:
    """An experiment whose method's faults and whose probes' services.<name>.* metrics are
    renamed."""
    exp = dict(exp)
    if "method" in exp:
        exp["method"] = _rename_faults(exp["method"], rename)
    ssh = exp.get("steady-state-hypothesis")
    if isinstance(ssh, Mapping) and isinstance(ssh.get("probes"), list):
        probes = []
        for p in ssh["probes"]:
            if isinstance(p, Mapping) and isinstance(p.get("metric"), str):
                parts = p["metric"].split(".")
                if parts[0] == "services" and len(parts) > 2:
                    parts[1] = rename(parts[1])
                    p = {**p, "metric": ".".join(parts)}
            probes.append(p)
        exp["steady-state-hypothesis"] = {**ssh, "probes": probes}
    return exp
