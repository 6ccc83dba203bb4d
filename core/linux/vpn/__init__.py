"""Per-project VPNs on the network host: an OpenVPN server per VLAN network, with its
own certificate authority.

spec (what a server should be), plan (servers wanted against servers running, as host
operations), server (start, probe, stop one OpenVPN), tap (its bridge port), render
(configuration text), pki and files (the CA and its private files), state (`vpn list`).
"""
