"""The archive: where every file lives, how chunks are encrypted and chained, and how that is verified.

    >>> from investigator.vault.store import Archive
    >>> archive = Archive.open("demo-archive")          # doctest: +SKIP
    >>> archive.info()["messages"]                       # doctest: +SKIP

The vault knows nothing of people, policy or grants: it takes keys as values
(anything shaped like :class:`investigator.vault.format.Keyring`) and writes
what it is told, append-only. docs/architecture.md has the map.
"""
