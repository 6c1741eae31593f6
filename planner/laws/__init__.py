"""Pure numerics of the loss and batch-size laws (numpy in, numpy out; no I/O).

Modules use the papers' symbols; each module docstring carries its legend.
"""
