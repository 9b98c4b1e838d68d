"""A grant's scope as a row filter, shared by a case's loader and the key service's reading of an export.

    >>> expr = scope_filter({"conversations": ["c-1"]}, directory, "messages")   # doctest: +SKIP
    >>> frame.filter(expr)                                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl


def scope_filter(scope: Mapping[str, Any], directory: Any, kind: str) -> pl.Expr | None:
    """The rows a grant's ``scope`` (conversations, participants, groups) keeps, as a Polars expression;
    None when the scope names nothing. ``directory`` links people to accounts and groups to people. Shared
    by a case's loader and the key service's own reading of an export (access/exportcheck.py)."""
    conversations = list(scope.get("conversations") or [])
    people = set(scope.get("participants") or [])
    groups = list(scope.get("groups") or [])
    if not (conversations or people or groups):
        return None
    if groups or people:
        directory_groups = directory.groups() if groups else {}
        for group in groups:
            people.update(directory_groups.get(group, []))
    accounts: set[str] = set()
    if people:
        links = directory.identities()
        for pid in people:
            accounts.add(pid)
            accounts.update(links.get(pid, []))
    if kind == "events":
        return pl.col("actor").is_in(sorted(accounts)) if accounts else None
    conditions = []
    if conversations:
        conditions.append(pl.col("conversation_id").is_in(conversations))
    if accounts:
        accounts_list = sorted(accounts)
        conditions.append(pl.col("sender_id").is_in(accounts_list) | pl.col("sender_name").is_in(accounts_list)
                          | pl.col("recipients").list.eval(pl.element().is_in(accounts_list)).list.any())
    expr = conditions[0]
    for extra in conditions[1:]:
        expr = expr & extra
    return expr


__all__ = ["scope_filter"]
