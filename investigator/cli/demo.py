"""The demo and sample-data commands."""

from __future__ import annotations

from pathlib import Path

import click

from investigator.cli.options import echo_json, json_option


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("demo-archive"),
              show_default=True, help="Where to build the demo archive (an earlier demo there is replaced).")
@click.option("--samples", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="Folder of sample exports (default: data_samples/, or a generated set).")
@json_option
def demo(out: Path, samples: Path | None, as_json: bool) -> None:
    """Run a demo with sample data (用样例数据演示完整流程).

    Run the whole path on the embedded key service with sample data.

    \b
    Builds an encrypted archive from data_samples/, verifies it and prints a
    summary. Uses a public DEMO-ONLY passphrase: never for real records.
    Example:
      investigator demo --out ./demo-archive
    """
    from investigator.demo.people import REVIEW_CASE
    from investigator.demo.run import DEMO_PASSPHRASE, run_demo

    result = run_demo(out, samples=samples, echo=(lambda _: None) if as_json else click.echo)
    if as_json:
        echo_json({"archive": str(result.archive), "verified": result.verified, "info": result.info,
                   "operator": result.operator, "grant": result.grant_id, "review_grant": result.review_grant_id,
                   "review_case": REVIEW_CASE if result.review_grant_id else "",
                   "report": str(result.report or ""), "report_html": str(result.report_html or ""),
                   "report_verified": result.report_verified, "report_problems": result.report_problems,
                   "batches": result.batches, "problems": result.problems})
    else:
        info = result.info
        click.echo(f"\ndemo archive: {result.archive}  (demo-only passphrase: {DEMO_PASSPHRASE})")
        click.echo(f"  {info['messages']} messages, {info['events']} events, {info['partitions']} partitions, "
                   f"{info['batches']} batches, {info['first_ts']} .. {info['last_ts']}")
        click.echo(f"  verification: {'intact' if result.verified else 'FAILED'}")
        for problem in result.problems:
            click.secho(f"  FAIL {problem}", fg="red", err=True)
        if result.verified:
            click.echo(f"  report: {result.report_html if result.report_verified else 'FAILED'}")
            for problem in result.report_problems:
                click.secho(f"  FAIL report: {problem}", fg="red", err=True)
    if not result.verified:
        raise SystemExit(4)
    if not result.report_verified:  # the report is the demo's main job: a failed or unverified one is no success
        from investigator.errors import IntegrityError, ReportError

        raise SystemExit(ReportError.exit_code if result.report is None else IntegrityError.exit_code)


@click.command()
@click.option("--messages", "n_messages", default=3000, show_default=True, type=click.IntRange(1),
              help="Messages in the normalized set (platform samples are smaller).")
@click.option("--seed", default=7, show_default=True, help="Random seed; the same seed gives the same files.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@json_option
def samples(n_messages: int, seed: int, out: Path, as_json: bool) -> None:
    """Generate synthetic sample exports (生成模拟导出样例).

    Realistic synthetic exports (Chinese and English) with planted cases.

    \b
    Example:
      investigator samples --messages 100000 --seed 7 --out ./big-samples
    """
    from investigator.demo.samples import write_sample_set

    written = write_sample_set(out, messages=n_messages, seed=seed)
    if as_json:
        echo_json({fmt: [str(p) for p in paths] for fmt, paths in written.items()})
        return
    for fmt, paths in written.items():
        click.echo(f"{fmt:>18}: {', '.join(str(p) for p in paths)}")


def register(main: click.Group) -> None:
    main.add_command(demo)
    main.add_command(samples)
