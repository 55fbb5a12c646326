"""One application, many deployments: ``app:`` and ``deploy:`` compiled into ordinary ``services:``.

An *application* is a set of components, each with its own work (``service_time``), its calls to
other components and its memory. A *deployment* says which components share a process:

``monolith``
    every component in one service (``deploy.name``, default ``monolith``): calls between
    components are in-process (no link, ``in_process_call`` of extra work each), one failure
    domain, scaled and restarted together, memory shared.
``microservices``
    one service per component, named like it: every call crosses a link.
``groups: {storefront: [catalog, cart], billing: [payments]}``
    the components listed together share a service named by the group; components left out of
    every group get a service of their own.

.. code-block:: yaml

    app:
      storefront: {service_time: 2ms, calls: [catalog, cart], memory: {base: 80MB}}
      catalog:    {service_time: {dist: exponential, mean: 6ms}}
      cart:       {service_time: 3ms, calls: [{service: payments, probability: 0.3}]}
      payments:   {service_time: 12ms}
    deploy:
      style: microservices            # or monolith, or groups: {...}
      serialization: 200us            # per message: a visit pays it twice (request, response)
      in_process_call: 5us            # per in-process call
      runtime_memory: 120MB           # per replica of every deployed service (one process)
      price: 0.04                     # per replica-hour, as services' price
      services: {catalog: {replicas: 3, workers: 8}}   # any service key of a deployed service
    workload:
      - {type: poisson, rate: 100/s, target: storefront}   # components, whatever the deployment

This module holds the keys a file writes (:class:`Component`, :class:`Deploy`); the call trees
and programs the simulator runs are in :mod:`.call_tree`, where each component goes in
:mod:`.app_plan`, and the compiler in :mod:`.app_compile`. :func:`~.app_compile.expand` runs on
the raw scenario data before validation (from :func:`simsys.spec.load.validate`): it checks ``app`` and ``deploy`` (problems name the user's
field paths, ``deploy.groups.storefront[1]``, and the file line), compiles them into checked
``services``, renames component names to deployed services in workload targets, links, Chaos
Monkey targets and faults, and keeps the checked ``app`` and ``deploy`` on the scenario for
:func:`simsys.app_graph`, :func:`~.app_plan.deployment` and cost.

How a deployed service works
----------------------------
A visit to a deployed service enters at one component (its *entry*: the component a workload
targets, or the one another service calls) and keeps the worker it got for the whole visit. The
worker does the entry's work, then its calls in order: a call to a component in the same service
is in-process (``in_process_call`` more, then that component's work and calls, recursively); a
call to a component elsewhere crosses a link to that component's service, and the worker waits
for the answer before going on. A service can be entered at several components, and one visit
may call another service several times (at different components). A fan-out
(``{parallel: [...], quorum: k}``) is all remote (the services' fan-out) or all in-process (on
threads of the same worker: the k-th shortest of its members' times).

When a visit is simply one stretch of work followed by its outgoing calls (always so for
monoliths and microservices), the service is an ordinary one whose ``service_time`` is the sum
of the component works along the in-process call tree (:class:`~.call_tree.ComponentWork`). Otherwise it
carries a :class:`~.call_tree.Program` per entry, and the simulator runs it step by step.

Component work is drawn from random streams named by component (``component/<name>/time``) and
coin flips from ``call/<caller>-><callee>``, the names the simulator gives a microservice's
calls, so two deployments of one application under one seed see the same arrivals and the same
work per component (common random numbers).
"""


from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from .chaos import Failures
from .distributions import Constant, Distribution, NonNegDuration
from .model import Call, CallStep, Memory, Parallel, flat_calls
from .model_base import Size, Strict

if TYPE_CHECKING:
    pass


Balancer = Literal["round_robin", "random", "least_connections", "power_of_two"]
STYLES = ("monolith", "microservices", "groups")
WORK = "component_work"  # the ``dist`` tag of compiled service times



# -- the scenario keys ----------------------------------------------------------------------
class Component(Strict):
    """One component of the application.

    ``replicas``, ``workers``, ``queue`` and ``balancer`` are what the component asks for when
    deployed alone; a service holding several components takes the largest of its members'
    (``deploy.services`` sets them outright).
    """

    service_time: Distribution = Constant(value=0.0)
    calls: list[CallStep] = Field(default_factory=list)
    memory: Memory = Field(default_factory=Memory)
    replicas: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=1)
    queue: int | None = Field(None, ge=0)
    balancer: Balancer | None = None
    failures: Failures | None = None

    def flat_calls(self) -> list[tuple[int, Call, Parallel | None]]:
        """Every call with its position and its fan-out (or None), as ``Service.flat_calls``."""
        return flat_calls(self.calls)


# Keys of a deployed service that come from its components, not from ``deploy.services``.
FROM_APP = ("service_time", "calls", "memory")


class Deploy(Strict):
    """How the application is deployed; ``deploy: monolith`` is short for ``{style: monolith}``.

    ``serialization`` is paid per message by the service that handles it: each visit to a
    deployed service costs its worker ``2 × serialization`` (read the request, write the
    response), from clients too, so a monolith pays it once per request and microservices once
    per hop. ``in_process_call`` is paid per in-process call. ``runtime_memory`` is added once
    per replica of every deployed service (each is one process). ``price`` is every deployed
    service's price per replica-hour.

    ``services.<name>`` sets keys of one deployed service — any key of ``services:`` but
    ``service_time``, ``calls`` and ``memory``, which come from its components — plus
    ``memory_limit``; what it leaves out is taken from the members (the largest ``replicas``,
    ``workers`` and ``queue``, the entry's ``balancer``, their failures combined).
    """

    style: Literal["monolith", "microservices", "groups"]
    groups: dict[str, list[str]] | None = None
    name: str | None = None
    in_process_call: NonNegDuration = 0.0
    serialization: NonNegDuration = 0.0
    runtime_memory: Size = 0.0
    price: float = Field(0.0, ge=0)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"style": value}
        if isinstance(value, Mapping) and "style" not in value and value.get("groups") is not None:
            return {**value, "style": "groups"}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Deploy:
        if self.style == "groups" and self.groups is None:
            raise ValueError("style groups needs groups: {service: [component, ...]}")
        return self
