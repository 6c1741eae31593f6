"""pydantic v2 contracts at every boundary: YAML profiles, CLI requests, JSON results, probe processes.

One module per domain: `base` (shared config), `laws` (loss-law profiles), `hardware` (accelerator
profiles), `batch` (batch-size-law profiles), `recommend` (request/result of `planner recommend`).
Plain floats only: numpy never crosses a boundary.

The modules `planner recommend` loads (base, recommend, hardware, laws, batch) write their annotations
without `from __future__ import annotations`: pydantic would otherwise compile and eval every
annotation string when it builds a class, about 6 ms of the command's start-up.
"""
