"""The three network managers; they co-exist, and each project uses one of them.

The managers by name are in :mod:`core.managers.registry`, their capabilities in
:mod:`core.managers.capabilities`. This package imports nothing itself: the console's
first rows ask a network's capabilities before SQLAlchemy, which the managers' rules
need, is loaded.
"""
