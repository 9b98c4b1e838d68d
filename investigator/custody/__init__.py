"""Master keys behind one protocol: wrap and unwrap data keys, sign as the archive, seal small secrets, rotate.

    >>> from investigator.custody.file import create_archive, unlock_archive
    >>> archive = create_archive(Path("case-archive"), passphrase="...")   # doctest: +SKIP
    >>> custody = unlock_archive(archive, "...", actor="admin")              # doctest: +SKIP
    >>> rotate(archive, custody, actor="admin")                              # doctest: +SKIP

``base.py`` holds the :class:`~investigator.custody.base.Custody` protocol;
``file.py`` is the first backend (a passphrase-protected key file in the
archive's ``keys/``); ``rotation.py`` adds and retires master-key versions on
any backend. A PKCS#11 HSM or an OpenBao transit backend goes beside ``file.py``.
"""
