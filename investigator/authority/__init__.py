"""Who may do what: the directory, identity (personal keys, TOTP), policy and grants.

    >>> from investigator.authority.policy import load_for_decision
    >>> org = load_for_decision(archive)                  # doctest: +SKIP

Loaded once per decision and passed down; every decision carries its rule.
"""
