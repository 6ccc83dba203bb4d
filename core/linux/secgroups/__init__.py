"""Security groups on the host: two nftables tables that filter instance ports.

spec (the filter a host must have, handed in by core/desired), tables (the layout, its
names and the nft commands that build it), state (the tables as read back), observe
(reading them for a full plan), keyed (the desired filter and the tables at the keys a
change names), plan (desired against observed, as operations), operations (each change
with its nft commands), render (the operations of an apply as one nft batch), record
(the generation that lets a no-change apply skip listing them).
"""
