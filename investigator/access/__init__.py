"""The one door to content: the key service (grant gate), the key server and its client, the loader
(case: open_case and Case; scan: scan_chunks, the per-group work of both load paths).

    >>> from investigator.access.case import open_case
    >>> case = open_case("demo-archive", grant="G-...", person="sunli", totp="123456")  # doctest: +SKIP
"""
