"""Per-project VPNs: an OpenVPN server per VLAN network, with its own certificate authority."""
