"""The metadata service of a network host: its server process and the DNAT to it.

A host that serves at least one FlatDHCP or VLAN network runs one metadata server
(``python -m core.metadata``) in its namespace, listening on ``metadata_port`` on every
address. Guests reach it as nova-network's did: a DNAT of 169.254.169.254:80. Here the
DNAT sends each bridge's guests to the gateway of that bridge's own network, so the
server knows the network a request came from by the address it arrived at, and the
instance by the source address (kept by the DNAT, made trustworthy by anti-spoofing).

The DNAT lives in a small table of its own, ``ip netcon_metadata``: a map from bridge
to (gateway, port), one rule that uses it, and a guard that lets only DNATed
connections (and the host's own, over loopback) reach the server's port, so neither
the public side nor a guest addressing the gateway directly gets past the DNAT.

Over IPv6 it is ``http://[fe80::a9fe:a9fe%eth0]/``, as OpenStack has it: each bridge of
a dual-stack network served here carries that address (address.py), and a table of
the same layout, ``ip6 netcon_metadata6``, sends its guests to the server at their /64's
gateway here (the /64's ``::1``, or a multi-host host's own address), keeping the
source, the guest's link-local or global address, which IPv6 anti-spoofing makes its
own. It also drops router adverts from fe80::a9fe:a9fe. The table is there while the
server runs and a dual-stack network is served; only then does the server listen on
IPv6 too (``--listen-v6``), so no IPv6 port of it is ever unguarded.

The server process runs where the host layer runs (so it reaches the database the same
way, which a namespace's own loopback may not) and opens its listening socket inside
the namespace the host layer acts in. It is found as dnsmasq is, by its command line in
/proc (it names this namespace's state directory), so one whose pid file was lost is
still seen; it is started when missing, restarted when its command line is out of date
or its port does not answer, and stopped when no network here needs it. Every step is a
plan operation.

spec (what the server and the DNAT should be, the tables' layout), observe (what the
host has of them), operations and plan (the difference, as host operations), table
(the one writer of both tables, in one nft batch, and of the address), address (the
IPv6 metadata address), server (start, probe, stop the process).
"""
