"""Turn an auditor's question (run, node, actor, action, time range) into SQL conditions."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from runbooks.audit import schema
from runbooks.audit.chain import canonical_json
from runbooks.audit.models import RecordFilter, format_time

_r = schema.records.c


def node_condition(node: str) -> ColumnElement[bool]:
    """Records about a node: the node itself, or anything whose details name it (pods evicted
    from it carry ``details["node"]``). Details are canonical JSON, so the text match is exact."""
    mention = canonical_json({"node": node})[1:-1]  # "node":"<name>"
    return or_(and_(_r.target_kind == "node", _r.target == node), _r.details.contains(mention))


def where_clauses(query: RecordFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if query.flow_run_id:
        # A full id, or the first characters of one as tables show it.
        clauses.append(_r.flow_run_id.startswith(query.flow_run_id, autoescape=True))
    if query.target:
        if query.target_kind == "node":
            clauses.append(node_condition(query.target))
        else:
            clauses.append(_r.target == query.target)
            if query.target_kind:
                clauses.append(_r.target_kind == query.target_kind)
    elif query.target_kind:
        clauses.append(_r.target_kind == query.target_kind)
    if query.actor:
        clauses.append(_r.actor == query.actor)
    if query.action:
        if query.action.endswith((".", "*")):
            clauses.append(_r.action.startswith(query.action.rstrip("*"), autoescape=True))
        else:
            clauses.append(_r.action == query.action)
    if query.runbook:
        clauses.append(_r.runbook == query.runbook)
    if query.outcome:
        clauses.append(_r.outcome == query.outcome)
    if query.since:
        clauses.append(_r.at >= format_time(query.since))
    if query.until:
        clauses.append(_r.at < format_time(query.until))
    return clauses
