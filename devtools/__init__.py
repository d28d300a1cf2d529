"""Development tools: stand-ins for services the tests and the demo cannot reach.

Not part of the installed distribution (pyproject.toml packages only flows, tasks and runbooks):
run from a checkout, e.g. ``python -m devtools.slack_standin``.
"""
