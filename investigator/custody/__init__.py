"""Master keys behind one protocol: wrap and unwrap data keys, sign as the archive, rotate.

    >>> from investigator.custody.file import FileCustody
    >>> keys = FileCustody(archive).unlock("passphrase", actor="admin")   # doctest: +SKIP

Backends: ``file`` (a passphrase-protected key file, today's); a PKCS#11 HSM
or an OpenBao transit engine go beside it. Rotation walks the wrapped keys.
"""
