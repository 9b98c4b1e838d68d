"""People, not accounts: resolve each sender to the person the directory links the account to.

    >>> import polars as pl
    >>> from investigator.analysis.people import People
    >>> people = People.from_identities({"zhangwei": ["zhangwei", "张伟", "U0ZHANGWEI"]}, names={"zhangwei": "张伟"})
    >>> frame = pl.DataFrame({"source": ["slack", "whatsapp"], "sender_id": ["U0ZHANGWEI", "+86 138"],
    ...                       "sender_name": ["张伟", "Tom"]})
    >>> people.resolve(frame)["person"].to_list()
    ['张伟', 'Tom (whatsapp)']

Analysis reads no directory: the case resolves the directory's linked identities once
(``case.identities()``: person id -> every id, name and platform account they appear under) and
passes them in. A sender is matched by its account id first, then by its display name; an account
or name that the directory links to two different people is ambiguous and left unresolved. An
unresolved sender is shown by display name with its platform ("Tom (whatsapp)"), so two strangers
of the same name on different platforms are never silently made one person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl

PERSON_ID = "person_id"  # the directory's person id, or null for an unknown account
PERSON = "person"  # the display label: the person's name, or "display name (platform)"


def platform_expr(source: str = "source") -> pl.Expr:
    """The platform of a ``source`` column: the format name up to its first '-' (``wechat-pywxdump`` -> ``wechat``)."""
    return pl.col(source).str.replace(r"-.*$", "")


@dataclass(frozen=True)
class People:
    """Account -> person links and person names, resolved once per case and reused for every frame.

    Build it with :meth:`from_identities`; an empty ``People()`` resolves nobody (every sender is
    shown by display name and platform).
    """

    accounts: Mapping[str, str] = field(default_factory=dict)  # account id or name -> person id
    names: Mapping[str, str] = field(default_factory=dict)  # person id -> display name

    def __repr__(self) -> str:  # counts only: names are personal data
        return f"People(accounts={len(self.accounts)}, people={len(set(self.accounts.values()))})"

    @classmethod
    def from_identities(cls, identities: Mapping[str, Iterable[str]] | None,
                        names: Mapping[str, str] | None = None) -> "People":
        """Links from ``identities`` (person id -> accounts and names, as ``Case.identities()`` returns).

        ``names`` (person id -> display name) labels people; without it a person is labelled with
        the second entry of their identities (the directory lists id, name, accounts), else the id.
        An account listed under two people is dropped (ambiguous). A ``platform:account`` entry also
        links the bare account. Raises nothing.
        """
        owners: dict[str, set[str]] = {}
        labels: dict[str, str] = {}
        for person, accounts in (identities or {}).items():
            listed = [a for a in accounts if a]
            labels[person] = (names or {}).get(person) or (listed[1] if len(listed) > 1 else person)
            for account in [person, *listed]:
                owners.setdefault(account, set()).add(person)
                if ":" in account:
                    owners.setdefault(account.split(":", 1)[1], set()).add(person)
        links = {a: next(iter(p)) for a, p in owners.items() if len(p) == 1}
        return cls(accounts=links, names=labels)

    def label(self, person_id: str) -> str:
        """The display name of ``person_id`` (the id itself when the directory has no name)."""
        return self.names.get(person_id, person_id)

    def person_expr(self, *, sender_id: str = "sender_id", sender_name: str = "sender_name") -> pl.Expr:
        """An expression giving the person id of each row's sender (null when unknown)."""
        keys, values = list(self.accounts), list(self.accounts.values())
        by_id = pl.col(sender_id).replace_strict(keys, values, default=None, return_dtype=pl.String)
        by_name = pl.col(sender_name).replace_strict(keys, values, default=None, return_dtype=pl.String)
        return pl.coalesce(by_id, by_name)

    def resolve(self, frame: pl.DataFrame, *, sender_id: str = "sender_id", sender_name: str = "sender_name",
                prefix: str = "", platform: bool = True) -> pl.DataFrame:
        """``frame`` with ``person_id`` and ``person`` columns added (``prefix`` + name) for its senders.

        Works column-wise (one ``replace`` per column, no per-row Python). Missing sender columns
        count as null. The same method resolves other account columns, e.g. ``actor`` of events:
        ``resolve(events, sender_id="actor", sender_name="actor", platform=False)`` (an unknown
        actor is then shown as logged, without the platform).
        """
        work = frame
        for col in (sender_id, sender_name, "source"):
            if col not in work.columns:
                work = work.with_columns(pl.lit(None, dtype=pl.String).alias(col))
        pid = self.person_expr(sender_id=sender_id, sender_name=sender_name)
        shown = pl.coalesce(pl.col(sender_name), pl.col(sender_id), pl.lit("?"))
        unknown = shown if not platform else pl.when(pl.col("source").is_null()).then(shown).otherwise(
            pl.format("{} ({})", shown, platform_expr()))
        out = work.with_columns(pid.alias(prefix + PERSON_ID)).with_columns(
            pl.coalesce(pl.col(prefix + PERSON_ID).replace_strict(list(self.names), list(self.names.values()),
                                                                  default=None, return_dtype=pl.String),
                        pl.col(prefix + PERSON_ID), unknown).alias(prefix + PERSON))
        added = [prefix + PERSON_ID, prefix + PERSON]  # replaced when ``frame`` already has them
        return out.select([*(c for c in frame.columns if c not in added), *added])

    def resolve_accounts(self, accounts: Iterable[str]) -> list[str]:
        """Person labels for plain account values (ids or names), unknown ones kept as given."""
        return [self.label(self.accounts[a]) if a in self.accounts else a for a in accounts]


def conversation_label(frame: pl.DataFrame) -> pl.Expr:
    """A conversation's name where one exists, else its id (for reports and figures)."""
    name = pl.col("conversation_name") if "conversation_name" in frame.columns else pl.lit(None, dtype=pl.String)
    return pl.coalesce(pl.when(name.str.strip_chars() != "").then(name), pl.col("conversation_id"))
