"""Provision verification: is this cluster what the team declared (a baseline), and healthy?

Pure parts only: the baseline model and its loader, what was read from the cluster (a
snapshot), and the checks (each a function from the snapshot and the baseline to a result).
Reading the cluster lives in tasks/kube/cluster_reads.py, the procedure in
flows/provision_verification.py.
"""
