"""The parts every runbook shares: check results and their report, rendered one way everywhere."""
