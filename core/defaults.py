"""Defaults that several layers share, kept free of imports so `--help` stays cheap."""

# Seconds a write waits for another writer's lock (--lock-timeout).
LOCK_TIMEOUT = 30.0
