"""Approval gates: the approval record is the truth, Slack is a view of it.

One module per concern: ``record`` (the row and its states), ``policy`` (who may decide),
``store`` (the table and its atomic compare-and-set, in the audit database), ``trail`` (the
audit events), ``blocks`` and ``view`` (the Slack message), ``signature`` (is an HTTP request
really from Slack), ``clicks`` (the ordered checks a click goes through), ``resume`` (waking
the waiting Prefect run), ``listener_http`` / ``listener_socket`` / ``listener`` (the
transports and the service), ``config`` and ``slack_client`` (settings and the WebClient).
The gate itself, which flows call, is ``tasks.approval_gate``.
"""
