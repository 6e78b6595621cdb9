"""Lab descriptions: the text a lab is built from, read into a Plan without building anything.

Pure: no namespace, command or socket. ``Lab.build`` (aiomcast.testing.lab) reads a
description with ``parse_description`` first, so a description that cannot be built is
refused, naming its line, before anything exists.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Final

from ._errors import LabError

__all__ = ["Plan", "RoutePlan", "parse_description"]


@dataclasses.dataclass(frozen=True)
class RoutePlan:
    """A ``route`` statement of a lab description (see ``Lab.route``)."""

    router: str
    inbound: int
    outbound: tuple[int, ...]
    #: One group or a prefix, as written.
    group: str
    #: A declared host's name, an address, or None for a (*,G) route.
    source: str | None
    #: The statement's line in the description.
    line: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """A lab description read by ``parse_description``, not yet built."""

    #: Every declared name, in the order of declaration.
    order: tuple[str, ...]
    routers: frozenset[str]
    hosts: frozenset[str]
    #: (net number, [(member, TTL threshold or None)]) in the order given.
    nets: tuple[tuple[int, tuple[tuple[str, int | None], ...]], ...]
    #: The static routes, in the order given.
    routes: tuple[RoutePlan, ...] = ()


_NAME: Final = re.compile(r"^[A-Za-z0-9_]{1,12}$")


def _small_number(text: str, low: int, high: int, what: str, line: int) -> int:
    # ASCII digits only, and no int() of a huge string (which raises ValueError past 4300
    # digits): the range is checked on the text's length first.
    if not (text.isascii() and text.isdigit()) or len(text) > 3 or not low <= int(text) <= high:
        raise LabError(f"line {line}: {what} {text[:20]!r} is not a number {low}-{high}")
    return int(text)


def parse_description(description: str) -> Plan:
    """Read a lab description (see ``Lab.build``) without building anything.

    Raises:
        LabError: a line that cannot be read, naming the line: unknown statement, a name
            declared twice or not declared, a bad name (letters, digits and _ only, at most
            12), a net or threshold outside 1-255, a threshold on a host, a net with fewer
            than two members or a member twice, a net number used twice, a forwarding loop,
            or a route that names no router, a net its router is not on, its own incoming net
            as outgoing, something other than a multicast group or prefix, or a source that
            is neither a host nor a unicast address of the group's family.
    """
    if not isinstance(description, str):
        raise LabError(f"a lab description is text, not {type(description).__name__}")
    declared: dict[str, bool] = {}
    nets: list[tuple[int, list[tuple[str, int | None]]]] = []
    routes: list[RoutePlan] = []
    for number, raw in enumerate(description.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        kind, rest = words[0], words[1:]
        if kind in ("routers", "hosts") and rest:
            for name in rest:
                if not _NAME.match(name):
                    raise LabError(
                        f"line {number}: name {name[:20]!r}: letters, digits and _ only, at most 12"
                    )
                if name in declared:
                    raise LabError(f"line {number}: {name!r} declared twice")
                declared[name] = kind == "routers"
        elif kind == "net" and len(rest) >= 3:
            net = _small_number(rest[0], 1, 255, "net", number)
            if any(existing == net for existing, _ in nets):
                raise LabError(f"line {number}: net {net} given twice")
            members: list[tuple[str, int | None]] = []
            for word in rest[1:]:
                name, slash, text = word.partition("/")
                if name not in declared:
                    raise LabError(f"line {number}: {name[:20]!r} is not declared")
                if any(name == seen for seen, _ in members):
                    raise LabError(f"line {number}: {name!r} is on net {net} twice")
                threshold = None
                if slash:
                    threshold = _small_number(text, 1, 255, "threshold", number)
                    if not declared[name]:
                        raise LabError(
                            f"line {number}: {name} is not a router: it has no TTL threshold"
                        )
                members.append((name, threshold))
            nets.append((net, members))
        elif kind == "route":
            routes.append(_route_statement(rest, declared, number))
        else:
            raise LabError(f"line {number}: cannot read {raw.strip()[:60]!r}")
    _check_tree({name for name, is_router in declared.items() if is_router}, nets)
    on = {(name, net) for net, members in nets for name, _ in members}
    for route in routes:
        for net in (route.inbound, *route.outbound):
            if (route.router, net) not in on:
                raise LabError(f"line {route.line}: router {route.router} is not on net {net}")
    return Plan(
        order=tuple(declared),
        routers=frozenset(n for n, r in declared.items() if r),
        hosts=frozenset(n for n, r in declared.items() if not r),
        nets=tuple((n, tuple(m)) for n, m in nets),
        routes=tuple(routes),
    )


def _route_statement(words: list[str], declared: dict[str, bool], line: int) -> RoutePlan:
    # route ROUTER from NET to NET [NET ...] group GROUP[/LEN] [source HOST|ADDRESS]
    usage = "route ROUTER from NET to NET... group GROUP[/LEN] [source HOST|ADDRESS]"
    if len(words) < 7 or words[1] != "from" or words[3] != "to" or "group" not in words[4:]:
        raise LabError(f"line {line}: a route reads {usage!r}")
    router = words[0]
    if router not in declared:
        raise LabError(f"line {line}: {router[:20]!r} is not declared")
    if not declared[router]:
        raise LabError(f"line {line}: {router} is not a router: it has no routes")
    inbound = _small_number(words[2], 1, 255, "net", line)
    at = words.index("group", 4)
    outbound = tuple(_small_number(w, 1, 255, "net", line) for w in words[4:at])
    tail = words[at + 1 :]
    if not outbound or len(tail) not in (1, 3) or (len(tail) == 3 and tail[1] != "source"):
        raise LabError(f"line {line}: a route reads {usage!r}")
    if inbound in outbound:
        raise LabError(f"line {line}: a route never sends back out of net {inbound}")
    if len(set(outbound)) != len(outbound):
        raise LabError(f"line {line}: a route names an outgoing net twice")
    try:
        group = ipaddress.ip_network(tail[0])
    except ValueError:
        raise LabError(f"line {line}: {tail[0][:40]!r} is not a group or group prefix") from None
    if not group.is_multicast:
        raise LabError(f"line {line}: {tail[0][:40]!r} is not a multicast group or prefix")
    source = tail[2] if len(tail) == 3 else None
    if source is not None and source not in declared:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            raise LabError(
                f"line {line}: source {source[:40]!r} is neither a host nor an address"
            ) from None
        if address.version != group.version or address.is_multicast or address.is_unspecified:
            raise LabError(
                f"line {line}: source {source!r} is not a unicast address of {group}'s family"
            )
    elif source is not None and declared[source]:
        raise LabError(f"line {line}: source {source} is a router, not a host")
    return RoutePlan(router, inbound, outbound, tail[0], source, line)


def _check_tree(routers: set[str], nets: list[tuple[int, list[tuple[str, int | None]]]]) -> None:
    # Routers and nets as the nodes of a graph, a router's attachments as its edges: a forest
    # has no forwarding loop. Hosts do not forward, so a host on two nets closes no loop.
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for number, members in nets:
        for name, _ in members:
            if name not in routers:
                continue
            a, b = find(f"net:{number}"), find(f"router:{name}")
            if a == b:
                raise LabError(
                    f"net {number} and router {name} close a forwarding loop: "
                    "nets and routers must form a tree"
                )
            parent[a] = b
