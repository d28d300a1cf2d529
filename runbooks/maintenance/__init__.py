"""Rolling node maintenance, the pure part: parameters, drain and batch plans, reports.

Nothing here talks to Kubernetes or Prefect; tasks/ gathers the facts, these modules decide.
"""
