"""Command line: ``investigator COMMAND ...``.

The only place that prints or exits. Each command module registers its
commands on :data:`main`; errors are caught once here and mapped to exit codes.

    $ investigator --help
"""

from __future__ import annotations

import importlib
import sys

import click

from investigator.errors import InvestigatorError, exit_codes

# Command modules, in --help order. Each defines ``register(group)``.
_COMMAND_MODULES = (
    "investigator.cli.archive",
    "investigator.cli.acquisition",
    "investigator.cli.audit",
    "investigator.cli.demo",
    "investigator.cli.case",
    "investigator.cli.keys",
    "investigator.cli.people",
    "investigator.cli.policy",
    "investigator.cli.consent",
    "investigator.cli.request",
    "investigator.cli.grant",
    "investigator.cli.login",
    "investigator.cli.report",
    "investigator.cli.bundle",
    "investigator.cli.backup",
    "investigator.cli.legalhold",
    "investigator.cli.retention",
    "investigator.cli.doctor",
    "investigator.cli.upgrade",
)


def _exit_code_help() -> str:
    rows = "\n".join(f"  {code:>3}  {name}" for name, code in exit_codes().items())
    return "Exit codes:\n\n\b\n" + rows


class _Main(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InvestigatorError as err:
            click.secho(f"error: {err.diagnostics()}", err=True, fg="red")
            ctx.exit(err.exit_code)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=_exit_code_help())
@click.version_option(package_name="investigator")
def main() -> None:
    """investigator: encrypted, policy-checked, audited investigation of chat records
    (聊天记录调查：加密存储、按策略授权、全程审计).

    \b
    Quick start (embedded key service, one trusted machine):
      investigator demo                      # build, verify and summarize a demo archive
      investigator init ./case-archive       # a new archive (asks for a passphrase)
      investigator ingest ./case-archive export.jsonl
      investigator verify ./case-archive
    """


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
