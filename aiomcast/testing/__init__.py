"""Test support for code that uses aiomcast: hosts, routers and nets on one machine.

``aiomcast.testing.lab`` builds network namespaces joined by veth pairs and bridges, with
routers that forward multicast, so that a test sends real multicast without any of it leaving
the machine. It needs root and Debian's iproute2 (and nftables or smcroute for routers).
Nothing in aiomcast itself imports this package.
"""
