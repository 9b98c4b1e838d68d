"""investigator: policy-checked, encrypted, auditable investigation of chat records.

    >>> import investigator
    >>> investigator.__version__
    '0.1.0'
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
