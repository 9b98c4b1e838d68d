"""The demo: a DEMO-ONLY archive built from the sample exports, its people, cases and secrets.

    >>> from investigator.demo import run_demo
    >>> result = run_demo(Path("demo-archive"))           # doctest: +SKIP

Everything here uses public DEMO-ONLY secrets; nothing outside ``demo/`` and
``cli/`` imports it.
"""

from investigator.demo.run import (DEMO_CASE, DEMO_MARKER, DEMO_OPERATOR, DEMO_PASSPHRASE, DEMO_SESSION, DemoResult,
                                   demo_grant, demo_report, demo_session, open_demo_case, run_demo)

__all__ = ["DEMO_CASE", "DEMO_MARKER", "DEMO_OPERATOR", "DEMO_PASSPHRASE", "DEMO_SESSION", "DemoResult",
           "demo_grant", "demo_report", "demo_session", "open_demo_case", "run_demo"]
