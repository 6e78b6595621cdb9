"""Test harness: network isolation, loop factories, family and link fixtures.

Isolation. When root on Linux, the whole test process moves into a private network namespace
before any test runs (``lab.enter_private_network``): every socket, membership report and
subprocess of the suite lives there, and nothing reaches the machine's own interfaces. Tests
that need more hosts build namespaces and veth pairs with ``aiomcast.testing.lab``. Without
root, the suite stays in the host namespace and IPv4 endpoint tests use the loopback interface
(127.0.0.1) only; tests that need namespaces skip with the reason, or fail when CI is set.

Loops. Every async test runs on the plain asyncio loop and on uvloop
(pytest-asyncio's ``pytest_asyncio_loop_factories`` hook).

Routers. A test that takes the ``engine`` fixture runs once per forwarding engine that this
kernel runs (``lab.engines_present``: ipmr, netfilter). The report's header names the engines
found and the end of the run how many routed tests passed through each, so a log shows which
engine proved the routed behaviour.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import pytest
import uvloop

import aiomcast
from aiomcast.testing import lab
from aiomcast.testing.lab import LinkEnds
from tests.helpers import IN_CI, Link, LinkPair, require_root

LAB_OK, LAB_WHY = lab.lab_available()

#: Each forwarding engine and why this kernel cannot run it ("" when it can); asked once, as
#: root, in pytest_configure. Without root it stays empty.
ENGINES_HERE: dict[str, str] = {}
#: The engine of each routed test, by node id, and the routed tests passed per engine.
_ENGINE_OF: dict[str, str] = {}
_ROUTED_PASSED: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    if LAB_OK and not lab.in_private_network():
        lab.enter_private_network()
    config.stash[_isolated_key] = lab.in_private_network()
    if LAB_OK:
        ENGINES_HERE.update(lab.engines_present())


_isolated_key = pytest.StashKey[bool]()


def _routed_engines() -> list[str]:
    if not LAB_OK:
        return list(lab.ENGINES)  # every one skips: no namespaces without root
    present = [name for name, why in ENGINES_HERE.items() if not why]
    return present or ["none"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", _routed_engines(), indirect=True)


#: The test groups (directories of tests/) whose every test needs root.
ROOT_GROUPS = {"lab": "the lab's namespaces", "tools": "peer programs in the lab"}
#: Fixtures that build namespaces or veth pairs: a test that takes one needs root.
ROOT_FIXTURES = {
    "netlab": "a lab of its own",
    "routed": "a routed lab",
    "engine": "a forwarding engine",
    "ipmr_lab": "the kernel's multicast router",
    "throttled": "a rate-limited veth pair",
}
TESTS = pathlib.Path(__file__).parent


def root_reason(item: pytest.Item) -> str | None:
    """Why ``item`` needs root (its group, a fixture or its own marker), or None."""
    group = item.path.relative_to(TESTS).parts[0]
    if group in ROOT_GROUPS:
        return ROOT_GROUPS[group]
    for name in item.fixturenames:  # type: ignore[attr-defined]
        if name in ROOT_FIXTURES:
            return ROOT_FIXTURES[name]
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "engine" in callspec.params:
            _ENGINE_OF[item.nodeid] = str(callspec.params["engine"])
        reason = root_reason(item)
        if reason is not None and item.get_closest_marker("root") is None:
            item.add_marker(pytest.mark.root(reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # The one place that asks for root: a test marked ``root`` (by its group, a fixture, a
    # parameter or itself) skips without namespaces, or fails when CI is set.
    marker = item.get_closest_marker("root")
    if marker is not None:
        require_root(marker.args[0] if marker.args else "a veth pair in the private namespace")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and report.nodeid in _ENGINE_OF:
        _ROUTED_PASSED[_ENGINE_OF[report.nodeid]] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ENGINES_HERE or not _ENGINE_OF:
        return
    parts = []
    for name, why in ENGINES_HERE.items():
        parts.append(f"{name}: {_ROUTED_PASSED[name]}" + (f" ({why})" if why else ""))
    terminalreporter.write_line("aiomcast lab: routed tests passed per engine: " + "; ".join(parts))


def pytest_unconfigure(config: pytest.Config) -> None:
    # Labs remove themselves; this catches anything a crashed test left behind.
    if LAB_OK:
        left = lab.sweep()
        if left:
            print(f"\naiomcast: removed leftover namespaces {left}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not config.stash.get(_isolated_key, False):
        return [f"aiomcast: no private network namespace ({LAB_WHY}); IPv4 tests use lo only"]
    engines = "; ".join(f"{name}: {why or 'present'}" for name, why in ENGINES_HERE.items())
    return [
        "aiomcast: tests run in a private network namespace (root)",
        f"aiomcast lab forwarding engines: {engines}",
    ]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=["ipv4", "ipv6"])
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def session_lab() -> Iterator[lab.Lab | None]:
    if not LAB_OK:
        yield None
        return
    with lab.Lab(prefix="amcs") as net:
        yield net


@pytest.fixture(scope="session")
def local_veth(session_lab: lab.Lab | None) -> LinkPair | None:
    """A veth pair with both ends in the test process's own (private) namespace."""
    if session_lab is None:
        return None
    ends = session_lab.link(session_lab.local, session_lab.local, subnet=250)
    return LinkPair(
        Link("ipv4", ends.a_name, ends.a_ipv4, "239.1.2.3"),
        Link("ipv6", ends.a_name, ends.a_ipv6, "ff12::1:2:3"),
        ends.b_name,
    )


LOOPBACK_V4 = Link("ipv4", "lo", "127.0.0.1", "239.1.2.3")


def _veth_link(family: str, local_veth: LinkPair | None) -> Link:
    assert local_veth is not None, "marked root: set up only where namespaces are built"
    return local_veth.ipv4 if family == "ipv4" else local_veth.ipv6


#: The veth-pair parameters of ``link`` and ``wire_link``: root only.
VETH = [pytest.param(family, marks=pytest.mark.root) for family in ("ipv4", "ipv6")]


@pytest.fixture(params=["ipv4-lo", *VETH])
def link(request: pytest.FixtureRequest, local_veth: LinkPair | None) -> Link:
    """Where a single-host endpoint test runs.

    ``ipv4-lo``: the loopback interface (127.0.0.1), with or without root. ``ipv4`` and
    ``ipv6``: one end of a veth pair in the private namespace, root only (IPv6 multicast does
    not loop back on lo).
    """
    if request.param == "ipv4-lo":
        return LOOPBACK_V4
    return _veth_link(str(request.param), local_veth)


@pytest.fixture(params=VETH)
def wire_link(request: pytest.FixtureRequest, local_veth: LinkPair | None) -> Link:
    """Like ``link`` but never the loopback interface: for behaviour that lo cannot show."""
    return _veth_link(str(request.param), local_veth)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """A forwarding engine this kernel runs (parametrized by pytest_generate_tests)."""
    name = str(request.param)
    if name == "none":
        pytest.skip(f"this kernel runs no forwarding engine: {lab.engine_report()}")
    for program, package in lab.ENGINES[name].programs:
        if shutil.which(program) is None:
            message = f"{name} needs {program} (Debian package {package}), see .ci/run"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return name


@pytest.fixture
def routed(engine: str) -> Iterator[lab.Lab]:
    """A fresh lab whose routers forward through ``engine``, torn down afterwards."""
    with lab.Lab(engine=engine) as net:
        yield net


@pytest.fixture
def ipmr_lab() -> Iterator[lab.Lab]:
    """A lab whose routers use the kernel's multicast router, for pins of its own behaviour.

    Skips where the kernel has none (also in CI: a property of the kernel's build).
    """
    why = ENGINES_HERE.get("ipmr", "")
    if why:
        pytest.skip(f"pins the kernel's multicast router (ipmr), which is missing: {why}")
    with lab.Lab(engine="ipmr") as net:
        yield net


@pytest.fixture
def netlab() -> Iterator[lab.Lab]:
    """A fresh lab for one test, torn down afterwards."""
    with lab.Lab() as net:
        yield net


@pytest.fixture(scope="module")
def throttled() -> Iterator[LinkEnds]:
    """A veth pair in the private namespace whose ``a`` end sends through a slow qdisc.

    tbf (40 Mbit/s) holds the sender's datagrams, so they stay charged to its send buffer:
    with a small SO_SNDBUF the socket really becomes full (over lo or a plain veth it never
    does, test_anyio.py pins that). Used by the backpressure tests of test_anyio.py and
    test_fastpath.py.
    """
    with lab.Lab(prefix="amca") as net:
        ends = net.link(net.local, net.local)
        tbf = ["rate", "40mbit", "burst", "64kb", "latency", "200ms"]
        subprocess.run(["tc", "qdisc", "add", "dev", ends.a_name, "root", "tbf", *tbf], check=True)
        # IPv4 drops a datagram from one of the host's own addresses arriving on another of
        # its interfaces unless accept_local is on (S15, test_lab.py).
        subprocess.run(["sysctl", "-qw", f"net.ipv4.conf.{ends.b_name}.accept_local=1"], check=True)
        yield ends


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """Pin the test process to one CPU for the test; yields that CPU.

    The backpressure tests send through a qdisc that holds datagrams (tbf) and then assert
    that they arrive in order. Unpinned, they saw datagrams out of order now and then (runs
    of a few, in 2 of 12 and 15 of 40 runs one afternoon, none in 90 runs later; with the C
    and the Python readers alike, so not the reader's doing). The likely path (a repro that
    moved a sender between CPUs on purpose did not show it): a veth pair
    delivers each datagram through the input backlog of the CPU that dequeued it from the
    qdisc, tbf dequeues from a timer pinned to the CPU that armed it, and a sender that moved
    to the other CPU dequeues later datagrams there; the two backlogs then race. On one CPU
    there is one backlog, so those tests can assert the order aiomcast keeps.
    """
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


@pytest.fixture(params=["fast", "fast-python", "protocol"])
def transport_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on aiomcast's batching transport and on the loop's own.

    ``fast`` reads (and sends) with the C extension (_speedups.c), ``fast-python`` with the
    pure-Python code that stands in where the extension is not built.
    """
    chosen = "loop" if request.param == "protocol" else "batch"
    monkeypatch.setattr(aiomcast._open, "default_transport", chosen)
    if request.param == "fast-python":
        monkeypatch.setattr(aiomcast._native, "BatchReader", None)
        monkeypatch.setattr(aiomcast._native, "QueueIterator", None)
        monkeypatch.setattr(aiomcast._native, "c_sendto", None)
        monkeypatch.setattr(aiomcast._native, "c_sendmmsg", None)
    return str(request.param)
