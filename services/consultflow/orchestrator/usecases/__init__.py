"""The orchestrator's use cases, one module per subject; each is a function of an `InstanceHost`.

A use case that changes an instance hands `host.step` a module-level function of the `Step` (its other
arguments bound with `functools.partial`), so the change can be read, and tested, on its own.
"""
