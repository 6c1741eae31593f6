"""pydantic v2 contracts at every boundary: YAML profiles, CLI requests, JSON results, probe processes.

One module per domain: `base` (shared config), `laws` (loss-law profiles), `hardware` (accelerator
profiles), `batch` (batch-size-law profiles), `recommend` (request/result of `planner recommend`).
Plain floats only: numpy never crosses a boundary.
"""
