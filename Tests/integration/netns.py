"""A network of hosts on one machine, for faults between hosts: each role in a network namespace
of its own, all joined by one bridge, so that a host can be cut off by taking its link down.

Topology (addresses in 10.199.0.0/24; every namespace and link is named `lpn…`, so nothing here
touches another test's network, and the host's own network is never changed):

    namespace lpn-switch:  bridge lpn-br, one port lpn-<host>-p per host (no address)
    namespace lpn-<host>:  eth0 (10.199.0.X/24), the other end of lpn-<host>-p; lo up

A cut is `ip -n lpn-switch link set lpn-<host>-p down`: the host's eth0 loses its carrier, what it
sends is dropped, nothing reaches it, and its neighbours' ARP entries for it fail (so new
connections to it fail with "no route to host" after a few seconds, while established ones just
see silence until TCP gives up). Restoring is `… up`. This kernel has no sch_netem, so a slow or
lossy link would be a relay, not a qdisc; none is needed for the cuts.

Needs root and `ip netns` (iproute2); `available()` says why not when they are missing."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import time

from cluster import Cluster

PREFIX = "lpn"
SWITCH = f"{PREFIX}-switch"
BRIDGE = f"{PREFIX}-br"
SUBNET = "10.199.0"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces() -> list[str]:
    """The namespaces of this harness that exist now (ours, or a failed run's leftovers)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.split() and line.split()[0].startswith(f"{PREFIX}-")]


def available() -> str | None:
    """None if network namespaces can be made here; else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the tests as root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on PATH"
    probe = f"{PREFIX}-probe"
    _ip("netns", "del", probe, check=False)
    try:
        for step in (["netns", "add", probe], ["-n", probe, "link", "add", "lpn-pa", "type", "veth", "peer", "name", "lpn-pb"],
                     ["-n", probe, "link", "add", "lpn-pbr", "type", "bridge"], ["netns", "exec", probe, "true"]):
            done = _ip(*step, check=False)
            if done.returncode != 0:
                return f"`ip {' '.join(step)}` failed: {done.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def remove_all() -> list[str]:
    """Kills every process in this harness's namespaces (only ours: they are named lpn-…) and
    deletes the namespaces, which deletes their links and the bridge. Returns what it removed."""
    removed = namespaces()
    for namespace in removed:
        pids = _ip("netns", "pids", namespace, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    for namespace in removed:
        for _ in range(50):
            if not _ip("netns", "pids", namespace, check=False).stdout.split():
                break
            time.sleep(0.1)
        _ip("netns", "del", namespace, check=False)
    return removed


class Network:
    """Hosts on one bridge. `hosts` maps a short name (≤ 8 characters) to the last byte of its
    address: Network({"broker": 2, "w0": 10}) makes lpn-broker at 10.199.0.2 and lpn-w0 at
    10.199.0.10."""

    def __init__(self, hosts: dict[str, int]):
        for name in hosts:
            assert len(f"{PREFIX}-{name}-p") <= 15, f"{name}: link names are at most 15 characters"
        self.hosts = dict(hosts)
        self.cuts: list[tuple[str, str, float]] = []  # (host, "down"/"up", time.monotonic())

    def namespace(self, host: str) -> str:
        return f"{PREFIX}-{host}"

    def address(self, host: str) -> str:
        return f"{SUBNET}.{self.hosts[host]}"

    def prefix(self, host: str) -> list[str]:
        """The command prefix that runs a program on `host`."""
        return ["ip", "netns", "exec", self.namespace(host)]

    def up(self) -> None:
        remove_all()  # a failed run's leftovers
        try:
            _ip("netns", "add", SWITCH)
            _ip("-n", SWITCH, "link", "add", BRIDGE, "type", "bridge")
            _ip("-n", SWITCH, "link", "set", BRIDGE, "up")
            for host in self.hosts:
                namespace, port = self.namespace(host), f"{PREFIX}-{host}-p"
                _ip("netns", "add", namespace)
                _ip("-n", namespace, "link", "set", "lo", "up")
                _ip("-n", SWITCH, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
                _ip("-n", SWITCH, "link", "set", port, "master", BRIDGE)
                _ip("-n", SWITCH, "link", "set", port, "up")
                _ip("-n", namespace, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
                _ip("-n", namespace, "link", "set", "eth0", "up")
            self.wait_connected()
        except BaseException:
            self.down()
            raise

    def wait_connected(self, timeout: float = 10) -> None:
        """Every bridge port forwards and every host's eth0 is up (there is no ping here)."""
        deadline = time.monotonic() + timeout
        while True:
            ports = _ip("-n", SWITCH, "-o", "link", "show", "master", BRIDGE).stdout
            states = {host: _ip("-n", self.namespace(host), "-br", "link", "show", "eth0").stdout.split()
                      for host in self.hosts}
            bridge = subprocess.run(["bridge", "-n", SWITCH, "link", "show"], capture_output=True, text=True).stdout
            forwarding = sum("state forwarding" in line for line in bridge.splitlines())
            if forwarding == len(self.hosts) and all(len(s) > 1 and s[1] == "UP" for s in states.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the network is not up after {timeout} s: {ports}\n{bridge}\n{states}")
            time.sleep(0.05)

    def down(self) -> None:
        remove_all()

    def cut(self, host: str) -> float:
        """Takes `host`'s link down; returns when (time.monotonic())."""
        _ip("-n", SWITCH, "link", "set", f"{PREFIX}-{host}-p", "down")
        at = time.monotonic()
        self.cuts.append((host, "down", at))
        return at

    def restore(self, host: str) -> float:
        _ip("-n", SWITCH, "link", "set", f"{PREFIX}-{host}-p", "up")
        at = time.monotonic()
        self.cuts.append((host, "up", at))
        return at


class NetnsCluster(Cluster):
    """A Cluster (cluster.py) on a Network: ops/broker runs on host "broker" and advertises its
    address there; each leep process runs on the host `placement` names for it, one-off commands
    and unplaced processes (producers, score readers) on host "client"."""

    def __init__(self, tmp: pathlib.Path, network: Network, placement: dict[str, str], port: int = 9092):
        super().__init__(tmp, port, host=network.address("broker"))
        self.network = network
        self.placement = {"broker": "broker", **placement}

    def command_prefix(self, name: str | None) -> list[str]:
        return self.network.prefix(self.placement.get(name or "", "client"))
