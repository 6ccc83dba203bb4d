"""Segments: VXLAN between two hosts over a veth underlay; 802.1Q where the kernel has it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import config as pyroute2_config
from sqlalchemy import update

from core.config import load_settings
from core.errors import Conflict, HostError
from core.linux.desired import DesiredHost, DesiredNetwork, Segment
from core.linux.host import HostLayer
from core.linux.netlink import Netlink, kernel_has_8021q
from core.linux.operations import CreateBridge, CreateVlan, SetMaster
from core.linux.ports import port_name
from core.linux.secgroups.operations import is_filter_operation
from core.linux.secgroups.whole import CreateWholeFilter
from core.service import NetconService
from core.service.hostsync import HostSync
from core.store.schema import instances
from tests.host.conftest import Lab, in_ns
from tests.host.scenario import network_host


def test_two_vxlan_hosts_carry_a_project_between_them(lab: Lab, tmp_path: Path) -> None:
    host = network_host(lab, tmp_path)
    compute = lab.netns("cmp")
    # Replace the network host's looped underlay by a real link to the compute host.
    in_ns(host.ns, "ip", "link", "del", "und0")
    lab.veth(host.ns, "und0", compute, "und0")
    lab.address(host.ns, "und0", "192.168.90.1/24")
    lab.address(compute, "und0", "192.168.90.2/24")

    service = host.service
    service.create_project("alpha")
    service.create_networks("10.50.0.0/24", 1, 256)
    near = service.launch_instance("alpha", "near").addresses[0]
    far = service.launch_instance("alpha", "far").addresses[0]
    # The service places instances on the network host; this one runs on the compute host.
    with service.db.write() as session:
        session.execute(update(instances).where(instances.c.name == "far").values(host="cmphost"))
    host.sync.sync()

    compute_service = NetconService(
        service.db.url, service.settings.replace(host="cmphost", netns=compute)
    )
    compute_layer = HostSync(compute_service)
    applied = compute_layer.sync().operations
    # A compute host carries the segment and bridge only: no gateway, no DHCP server
    # (its guests reach nothing of the host itself, its link-local address included)...
    assert [op.describe() for op in applied if not is_filter_operation(op)] == [
        "create bridge br100",
        "create VXLAN vx100 (VNI 100) over und0, group 239.1.1.1",
        "enslave vx100 to br100",
        "set MTU of br100 to 1450",
        "set MTU of vx100 to 1450",
        "create nftables table inet netcon_hostinput (guests reach only DHCP, DNS, ping and "
        "metadata on this host)",
        "let guests on br100 reach only DHCP, DNS, ping and metadata on this host",
    ]
    # ...and the filter of the port of the instance it runs.
    (made,) = [op for op in applied if isinstance(op, CreateWholeFilter)]
    assert [(p.name, p.instance) for p in made.desired.ports] == [(port_name(far.mac), "far")]

    near_ns = host.instance("near", near.mac, "br100")
    far_ns = lab.netns("far")
    lab.plug(compute, port_name(far.mac), "br100", far_ns, far.mac)

    # DHCP from the network host's dnsmasq reaches the far instance across the VXLAN.
    assert lab.dhcp_client(far_ns) == far.address
    assert lab.dhcp_client(near_ns) == near.address
    lab.echo_server(near_ns, near.address, 8080)
    assert lab.fetch(far_ns, f"http://{near.address}:8080/") == far.address
    assert compute_layer.plan().operations == ()
    assert host.sync.plan().operations == ()
    compute_layer.close()


def test_a_vlan_network_without_8021q_is_held_back_alone(lab: Lab, tmp_path: Path) -> None:
    """On a kernel without 802.1Q the VLAN network waits, named in the plan, while the
    rest is applied; once modified to VXLAN (no instance plugged yet) it comes up."""
    if kernel_has_8021q():
        pytest.skip("this kernel supports 802.1Q: nothing is held back")
    host = network_host(lab, tmp_path, segmentation="vlan")
    service = host.service
    service.create_project("alpha")
    service.create_project("beta")
    service.create_networks("10.60.0.0/24", 1, 256)  # 802.1Q, as segmentation says
    service.create_networks("10.61.0.0/24", 1, 256, 101, 1001, segmentation="vxlan")
    service.launch_instance("alpha", "vm1")  # takes the first: 10.60.0.0/24, 802.1Q
    service.launch_instance("beta", "vm2")  # 10.61.0.0/24, VXLAN
    held = service.get_network("10.60.0.0/24")
    other = service.get_network("10.61.0.0/24")
    assert (held.project, other.project) == ("alpha", "beta")
    with pytest.raises(HostError, match="held back; everything else applied"):
        host.sync.sync()
    plan = host.sync.plan()
    assert plan.partial and len(plan.problems) == 1
    assert "10.60.0.0/24: this kernel has no 802.1Q VLAN support" in plan.problems[0]
    assert "--segmentation vxlan" in plan.problems[0]
    links = host.layer.observe().links
    assert held.bridge not in links and "vlan100" not in links
    assert other.bridge in links and links["vx101"].kind == "vxlan"

    # An instance is plugged: the segmentation stays as it is.
    with pytest.raises(Conflict, match="still has 1 instance"):
        service.modify_network(held.cidr, segmentation="vxlan")
    service.terminate_instance("vm1")
    service.modify_network(held.cidr, segmentation="vxlan")
    service.launch_instance("alpha", "vm3")
    done = host.sync.sync()
    assert not done.problems
    links = host.layer.observe().links
    assert links["vx100"].kind == "vxlan" and held.bridge in links
    assert host.sync.plan().operations == ()


@pytest.fixture
def mock_netlink() -> Iterator[None]:
    pyroute2_config.mock_netlink = True
    try:
        yield
    finally:
        pyroute2_config.mock_netlink = False


@pytest.mark.no_tools
def test_vlan_segment_is_created_on_the_vlan_interface(mock_netlink: None, tmp_path: Path) -> None:
    """The 802.1Q path against pyroute2's in-memory kernel, which has 802.1Q."""
    settings = load_settings(paths=[], state_dir=str(tmp_path), vlan_interface="eth1")
    layer = HostLayer(settings)
    # The mock's fresh namespace has only lo: give it the VLAN interface.
    layer.netlink._ipr.link("add", ifname="eth1", kind="dummy")
    network = DesiredNetwork(
        id=1,
        cidr="10.70.0.0/24",
        manager="vlan",
        label="vlan100",
        project="alpha",
        bridge="br100",
        owns_bridge=True,
        bridge_interface=None,
        segment=Segment("vlan", 100, "eth1"),
        gateway=None,
        prefixlen=24,
        broadcast="10.70.0.255",
        dhcp=None,
        isolated=False,
    )
    desired = DesiredHost("h", "eth0", "239.1.1.1", 4789, networks=(network,))
    plan = layer.plan(desired).plan
    assert plan.operations == (
        CreateBridge("br100"),
        CreateVlan("vlan100", 100, "eth1", "10.70.0.0/24"),
        SetMaster("vlan100", "br100"),
    )
    layer._executor().apply(plan)
    links = {link.name: link for link in layer.netlink.links()}
    assert links["vlan100"].kind == "vlan"
    assert links["vlan100"].segment_id == 100
    assert links["vlan100"].parent == links["eth1"].index
    layer.close()


def test_netlink_pipeline_reports_each_request(lab: Lab) -> None:
    from core.linux import netlink

    ns = lab.netns("nl")
    session = Netlink(ns)
    results = session.run(
        [
            netlink.new_link("brA", "bridge"),
            netlink.new_link("brA", "bridge"),
            netlink.new_link("brB", "bridge"),
        ]
    )
    assert results == [0, 17, 0]  # the duplicate alone fails, with EEXIST
    names = {link.name for link in session.links()}
    assert {"brA", "brB"} <= names
    session.run([netlink.del_link(link.index) for link in session.links() if link.name != "lo"])
    session.close()
