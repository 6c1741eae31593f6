"""planner: LLM pre-training budgets from published and calibrated scaling laws."""

__version__ = "0.1.0"
