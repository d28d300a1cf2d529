"""Approval gates: the approval record is the truth, Slack is a view of it.

One module per concern: ``record`` (the row and its states), ``policy`` (who may decide),
``store`` (the table and its atomic transitions), ``blocks`` (the Slack message),
``signature`` (is an HTTP request really from Slack), ``clicks`` (the ordered checks a click
goes through), ``listener_http`` / ``listener_socket`` (the two transports).
"""
