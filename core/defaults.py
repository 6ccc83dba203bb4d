"""Defaults that several layers share, kept free of imports so `--help` stays cheap."""

# Seconds a write waits for another writer's lock (--lock-timeout).
LOCK_TIMEOUT = 30.0

# Seconds a waiting agent takes to see that it was stopped (SIGTERM, ctrl+c): its wait
# for a change lasts until the next heartbeat, and a unit's stop should not.
STOP_WAIT = 0.5
