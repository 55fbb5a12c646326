"""Reading scenarios: YAML file or dict → :class:`~simsys.spec.model.Scenario`, or every problem.

ruamel.yaml in round-trip mode keeps each key's line and column, refuses duplicate keys and
reads YAML 1.2 (``no`` stays a string). pydantic then checks types and units; each of its errors
is mapped back to ``file:line:col: field.path: what was expected, got what``.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, ScenarioError, did_you_mean
from . import limits
from .model import Scenario, semantic_problems
from .problems import Loc, Positions, Problems, dotted, locate


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _plain(node: Any, loc: Loc, positions: Positions) -> Any:
    """Copy ruamel's round-trip nodes into plain dicts/lists/scalars, noting 1-based positions."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            try:
                kl, kc = node.lc.key(key)
                vl, vc = node.lc.value(key)
                positions[(*loc, key, "<key>")] = (kl + 1, kc + 1)
                positions[(*loc, key)] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[str(key) if not isinstance(key, str | int) else key] = _plain(
                value, (*loc, key), positions
            )
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            try:
                il, ic = node.lc.item(i)
                positions[(*loc, i)] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(value, (*loc, i), positions))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def check_shape(text: str, source: str) -> None:
    """Refuse YAML whose expanded size or nesting would exhaust memory or the stack.

    Walks the parser's event stream (no tree is built, so nothing recursive runs) and adds up
    what each alias would expand to: the size of the node its anchor names, nested aliases
    included. An alias bomb is refused after reading its few hundred bytes, not after building
    billions of nodes; ordinary anchors (a shared link or retry policy) cost a few nodes.
    Text that is not valid YAML is left to the loader, which says where.
    """
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        ScalarEvent,
    )

    max_nodes, max_alias, max_depth = (limits.max_yaml_nodes(), limits.max_alias_nodes(),
                                       limits.max_depth())
    size: dict[Any, int] = {}     # anchor -> nodes it expands to
    height: dict[Any, int] = {}   # anchor -> nesting levels it adds
    # one frame per open collection: [anchor, nodes before it, deepest level reached inside]
    frames: list[list[Any]] = []
    total = from_aliases = 0

    def refuse(message: str, mark: Any) -> None:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ScenarioError([Problem("", message, source, line, col)])

    def reach(depth: int, mark: Any) -> None:
        if depth > max_depth:
            refuse(f"nested deeper than {max_depth} levels (SIMSYS_MAX_DEPTH raises the limit)",
                   mark)
        if frames and depth > frames[-1][2]:
            frames[-1][2] = depth

    try:
        for event in _yaml().parse(io.StringIO(text)):
            mark = event.start_mark
            if isinstance(event, CollectionStartEvent):
                total += 1
                frames.append([event.anchor, total, len(frames) + 1])
                reach(len(frames), mark)
            elif isinstance(event, CollectionEndEvent):
                anchor, before, deepest = frames.pop()
                if frames and deepest > frames[-1][2]:
                    frames[-1][2] = deepest
                if anchor is not None:
                    size[anchor] = total - before + 1
                    height[anchor] = deepest - len(frames)
            elif isinstance(event, ScalarEvent):
                total += 1
                if event.anchor is not None:
                    size[event.anchor], height[event.anchor] = 1, 0
            elif isinstance(event, AliasEvent):
                added = size.get(event.anchor, 1)
                total += added
                from_aliases += added
                reach(len(frames) + height.get(event.anchor, 0), mark)
                if from_aliases > max_alias:
                    refuse(f"aliases expand to more than {max_alias:,} values (an alias bomb?); "
                           "SIMSYS_MAX_ALIAS_NODES raises the limit", mark)
            if total > max_nodes:
                refuse(f"more than {max_nodes:,} values (SIMSYS_MAX_YAML_NODES raises the limit)",
                       mark)
    except YAMLError:
        return  # the loader reports it, with its position


def read_yaml(text: str, source: str) -> tuple[dict[str, Any], Positions]:
    """Parse YAML text into plain data plus a map from field path to (line, column)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    check_shape(text, source)
    try:
        node = _yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = (exc.problem or exc.context or "not valid YAML").strip()
        path = ""
        if "duplicate key" in str(exc):
            what = "duplicate key " + str(exc).split("found duplicate key", 1)[-1].split("with value")[0].strip()
            path = _key_path_at(text, exc.problem_mark)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ScenarioError([Problem(path, f"not valid YAML: {what}", source, line, col)]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem("", f"not valid YAML: {exc}", source)]) from None
    positions: Positions = {}
    data = _plain(node, (), positions)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem("", f"expected a mapping of scenario keys, got {type(data).__name__}", source, 1, 1)]
        )
    return data, positions


def _key_path_at(text: str, mark: Any) -> str:
    """Dotted path of the mapping key written at ``mark``, for errors raised while parsing."""
    try:
        root = _yaml().compose(io.StringIO(text))
    except Exception:  # the text already failed to load; the path is a bonus
        return ""

    def walk(node: Any, loc: Loc) -> Loc | None:
        if len(loc) > 64 or not isinstance(getattr(node, "value", None), list):
            return None
        for i, item in enumerate(node.value):
            if isinstance(item, tuple):
                key, value = item
                here = (*loc, key.value)
                if (key.start_mark.line, key.start_mark.column) == (mark.line, mark.column):
                    return here
                found = walk(value, here)
            else:
                found = walk(item, (*loc, i))
            if found:
                return found
        return None

    found = walk(root, ()) if root is not None and mark is not None else None
    return dotted(found) if found else ""


def validate(
    data: Mapping[str, Any], source: str | None = None, positions: Positions | None = None
) -> Scenario:
    """Check plain scenario data and return the typed :class:`Scenario`.

    Raises
    ------
    ScenarioError
        With every problem found, each naming its field path (and line, for files).
    """
    positions = positions or {}
    too_long = _too_long(data, source, positions)
    if too_long:  # before pydantic, which would spend minutes on 700,000 services
        raise ScenarioError(too_long)
    if "app" in data or "deploy" in data:  # one application, deployed as services
        from .app_compile import expand

        deep = _in_process_depth(data, source, positions)
        if deep:
            raise ScenarioError(deep)

        data = expand(data, source, positions)
    problems = Problems(data, source, positions)
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems.pydantic(exc, suggest=lambda key: did_you_mean(key, _key_vocabulary()))
        known = {p.path for p in problems.items}
        for loc, msg in _unknown_names(data):
            if dotted(loc) not in known:
                problems.add(loc, msg)
        raise ScenarioError(problems.items) from None
    for loc, msg in semantic_problems(scenario):
        problems.add(loc, msg)
    problems.raise_if_any()
    return scenario


def _too_long(data: Mapping[str, Any], source: str | None, positions: Positions) -> list[Problem]:
    """Every mapping or list longer than its bound in :mod:`~simsys.spec.limits`."""
    problems = []
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        loc, node = stack.pop()
        if isinstance(node, Mapping):
            children: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if loc == ("services",):
            bound, what = limits.MAX_SERVICES, "services"
        elif loc and loc[-1] == "values":
            bound, what = limits.MAX_VALUES, "values"
        else:
            bound, what = limits.MAX_LIST, "items"
        if len(node) > bound:
            problems.append(locate(loc, f"{len(node):,} {what}, more than the {bound:,} "
                                         "one scenario may hold", source, positions))
            continue
        stack.extend(((*loc, key), value) for key, value in children
                     if isinstance(value, Mapping | list))
    return problems


def _in_process_depth(data: Mapping[str, Any], source: str | None,
                      positions: Positions) -> list[Problem]:
    """Refuse an app whose calls nest deeper than :data:`limits.MAX_IN_PROCESS_DEPTH` when
    deployed so that they run in one process (a monolith or groups): its program is a nest of
    in-process calls as deep as the chain. Microservices run any depth."""
    app, deploy = data.get("app"), data.get("deploy")
    style = deploy.get("style") if isinstance(deploy, Mapping) else deploy
    if not isinstance(app, Mapping) or (style == "microservices" and not (
            isinstance(deploy, Mapping) and deploy.get("groups"))):
        return []
    callees: dict[Any, list[Any]] = {}
    for name, body in app.items():
        calls = body.get("calls") if isinstance(body, Mapping) else None
        out = callees[name] = []
        for call in calls if isinstance(calls, list) else []:
            members = call.get("parallel") if isinstance(call, Mapping) else None
            for step in members if isinstance(members, list) else [call]:
                target = step.get("service") if isinstance(step, Mapping) else step
                if isinstance(target, str) and target in app:
                    out.append(target)
    depth: dict[Any, int] = {}  # calls below each component, longest chain, no recursion
    for root in callees:
        stack, entered = [root], set()
        while stack:
            node = stack[-1]
            if node not in entered:
                entered.add(node)
                stack.extend(c for c in callees[node] if c not in depth and c not in entered)
                continue
            stack.pop()
            if node not in depth:  # a cycle counts once here; the app's own check reports it
                depth[node] = 1 + max((depth.get(c, 0) for c in callees[node]), default=-1)
        if depth[root] > limits.MAX_IN_PROCESS_DEPTH:
            return [locate(("app", root, "calls"),
                            f"calls nest {depth[root]} components deep, deeper than the "
                            f"{limits.MAX_IN_PROCESS_DEPTH} one process can run; deploy the "
                            "app as microservices, or split the chain into groups",
                            source, positions)]
    return []


def _key_vocabulary() -> list[str]:
    """Every key some part of a scenario accepts, for "did you mean" on an unknown key."""
    from pydantic import BaseModel

    words: set[str] = set()
    todo: list[type] = [BaseModel]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("simsys.spec"):
            for name, field in getattr(cls, "model_fields", {}).items():
                words.add(field.alias or name)
    return sorted(words)


def _unknown_names(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Calls and workload targets naming no service, found in the raw data, so that a file with
    schema errors gets its reference errors in the same report (the full check, on the
    validated scenario, is :func:`~simsys.spec.model.semantic_problems`)."""
    services = data.get("services")
    if not isinstance(services, Mapping) or "app" in data:
        return []
    names = [n for n in services if isinstance(n, str)]

    def unknown(name: Any) -> str | None:
        if not isinstance(name, str) or name in services:
            return None
        return (f"unknown service {name!r}{did_you_mean(name, names)}; services are: "
                + ", ".join(sorted(names)))

    out = []
    for svc, body in services.items():
        calls = body.get("calls") if isinstance(body, Mapping) else None
        for i, call in enumerate(calls if isinstance(calls, list) else []):
            members = call.get("parallel") if isinstance(call, Mapping) else None
            steps = [((i, "parallel", j), m) for j, m in enumerate(members)] \
                if isinstance(members, list) else [((i,), call)]
            for where, step in steps:
                target = step.get("service") if isinstance(step, Mapping) else step
                message = unknown(target)
                if message:
                    out.append((("services", svc, "calls", *where), "calls " + message))
    workload = data.get("workload")
    for i, w in enumerate(workload if isinstance(workload, list) else []):
        message = unknown(w.get("target")) if isinstance(w, Mapping) else None
        if message:
            out.append((("workload", i, "target"), message))
    return out


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``key.path=value`` into a path and a YAML-typed value (``3`` is an int)."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    path: list[str | int] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
    if any(p == "" for p in path):  # not all(path): index 0 is a valid key
        raise ScenarioError(f"--set {text!r}: empty key in path")
    try:
        value, _ = read_yaml(f"v: {raw}", f"--set {key}")
    except ScenarioError as exc:  # its line:col would point into "v: ...", not at anything typed
        raise ScenarioError(f"--set {text!r}: {exc.problems[0].message}") from None
    return path, value["v"]


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """Return a deep copy of ``data`` with dotted-path overrides applied (the input is untouched).

    ``overrides`` is a mapping ``{"services.gateway.replicas": 3}`` or ``key=value`` strings.
    """
    out = copy.deepcopy(data)
    items: Iterable[tuple[list[str | int], Any]]
    if isinstance(overrides, Mapping):
        items = (([int(p) if p.isdigit() else p for p in k.split(".")], v) for k, v in overrides.items())
    else:
        items = (parse_override(o) for o in overrides)
    for path, value in items:
        node: Any = out
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    raise ScenarioError(f"--set {'.'.join(map(str, path))}: no item {part} in list")
                node = node[part]
            else:
                if part not in node or node[part] is None:
                    _refuse_creating(tuple(path[:i]), part, node, path)
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
        last = path[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise ScenarioError(f"--set {'.'.join(map(str, path))}: no item {last} in list")
        elif not isinstance(node, dict):
            raise ScenarioError(f"--set {'.'.join(map(str, path))}: {path[-2]} is not a mapping")
        node[last] = value
    return out


# Mappings whose keys are names the user chose: an override may replace or add a whole entry,
# but a dotted path through a name that is not there is a typo, not a new service.
_NAMED = {("services",): "service", ("app",): "component"}


def _refuse_creating(loc: Loc, key: Any, node: Mapping[str, Any], path: list[Any]) -> None:
    what = _NAMED.get(loc)
    if what is None:
        return
    given = ".".join(map(str, path))
    whole = dotted((*loc, key))
    raise ScenarioError(
        f"--set {given}: no {what} {key!r}{did_you_mean(key, node)}; "
        f"to add one, set it whole: --set '{whole}={{...}}'")


def read_text(path: str | Path, what: str = "a scenario file") -> str:
    """The text of a regular file no larger than :func:`limits.max_file_bytes`.

    Devices (``/dev/zero``), FIFOs (which would block for ever) and oversized files are refused
    before anything is read; every failure is a ScenarioError naming the file.
    """
    import stat

    name = str(path)
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        raise ScenarioError([Problem("", "no such file", name)]) from None
    except OSError as exc:
        raise ScenarioError([Problem("", f"cannot read: {exc.strerror or exc}", name)]) from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError([Problem("", f"is a directory, expected {what}", name)])
    if not stat.S_ISREG(st.st_mode):
        raise ScenarioError([Problem("", f"not a regular file (a device, FIFO or socket), "
                                         f"expected {what}", name)])
    cap = limits.max_file_bytes()
    if st.st_size > cap:
        raise ScenarioError([Problem("", f"{st.st_size:,} bytes, over the {cap:,}-byte limit "
                                         "(SIMSYS_MAX_FILE_BYTES raises it)", name)])
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)  # the file may have grown since stat
    except OSError as exc:
        raise ScenarioError([Problem("", f"cannot read: {exc.strerror or exc}", name)]) from None
    if len(raw) > cap:
        raise ScenarioError([Problem("", f"over the {cap:,}-byte limit "
                                         "(SIMSYS_MAX_FILE_BYTES raises it)", name)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([Problem("", "not a text file (expected UTF-8 YAML)", name)]) from None


def read(path: str | Path) -> tuple[dict[str, Any], Positions, str]:
    """Read a scenario file into plain data and positions; unreadable files are ScenarioErrors."""
    text = read_text(path)
    data, positions = read_yaml(text, str(path))  # the path as typed, like compilers print it
    return data, positions, str(path)


def load(
    source: str | Path | Mapping[str, Any] | Scenario,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> Scenario:
    """Load a scenario from a YAML file path, a dict or a :class:`Scenario`.

    Parameters
    ----------
    source
        Path to a YAML file, plain scenario data, or an already validated scenario.
    overrides
        Optional ``{"dotted.path": value}`` mapping or ``"dotted.path=value"`` strings, applied
        before validation, so they are checked like the file.

    Examples
    --------
    >>> s = load({"services": {"web": {"workers": 4}}, "duration": "10min"})
    >>> s.duration, s.services["web"].workers
    (600.0, 4)
    """
    if isinstance(source, Scenario):
        if not overrides:
            return source
        source = source.model_dump(by_alias=True, exclude_defaults=False)
    positions: Positions = {}
    name: str | None = None
    if isinstance(source, str | Path):
        data, positions, name = read(source)
    else:
        data = dict(source)
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = list(overrides)
        data = apply_overrides(data, overrides)
        try:
            return validate(data, name, positions)
        except ScenarioError as exc:
            raise ScenarioError([_blame_override(p, overrides) for p in exc.problems]) from None
    return validate(data, name, positions)


def _blame_override(problem: Problem, overrides: Mapping[str, Any] | list[str]) -> Problem:
    """A problem in a value given as an override points at ``--set``, not at the file's line."""
    if isinstance(overrides, Mapping):
        keys = [[int(p) if p.isdigit() else p for p in k.split(".")] for k in overrides]
    else:
        keys = [parse_override(o)[0] for o in overrides]
    for key in keys:
        d = dotted(tuple(key))
        inside = problem.path == d or problem.path.startswith((d + ".", d + "["))
        # a key the override created (absent from the file) has no line: blame the override
        above = problem.line is None and d.startswith((problem.path + ".", problem.path + "["))
        if inside or above:
            return Problem(problem.path, problem.message, "--set")
    return problem
