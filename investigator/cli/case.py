"""Case commands: open (what a grant lets you read) and the key server."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from investigator.cli.options import (archive_argument, archive_passphrase, echo_json, json_option, key_dir_option,
                                      person_key, unlock)

utc_option = click.option("--utc", "in_utc", is_flag=True,
                          help="Print times in UTC instead of the archive's time zone (--json is always UTC).")
TIME_KEYS = ("start", "end", "ts", "issued", "expiry", "created", "expires", "revoked")


def shown_time(value: Any, zone: str, *, utc: bool = False) -> str:
    """A UTC time (a datetime or canonical ``...Z`` text) for people: ``2026-11-18 14:00:00+08:00`` in ``zone``.

    With ``utc``: ``2026-11-18 06:00:00Z``. Text that is not a time is returned unchanged.
    """
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(when, datetime):
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if utc:
        return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    local = when.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S") + f"{offset[:3]}:{offset[3:]}"


def shown_times(obj: Any, zone: str, *, utc: bool = False) -> Any:
    """``obj`` (JSON-like) with the values of :data:`TIME_KEYS` (and ``window`` pairs) shown by :func:`shown_time`."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in TIME_KEYS and isinstance(value, str):
                out[key] = shown_time(value, zone, utc=utc)
            elif key == "window" and isinstance(value, list):
                out[key] = [shown_time(v, zone, utc=utc) for v in value]
            else:
                out[key] = shown_times(value, zone, utc=utc)
        return out
    if isinstance(obj, list):
        return [shown_times(v, zone, utc=utc) for v in obj]
    return obj


@click.command("open")
@archive_argument
@click.option("--grant", required=True, help="Grant id (or grant file).")
@click.option("--as", "person", required=True, metavar="ID", help="Who opens the case (the grant's operator).")
@click.option("--totp", default=None, help="A fresh TOTP code (动态验证码).")
@click.option("--session", default=None, help="A session token from 'investigator login' instead of a code.")
@click.option("--monitor", default=None, metavar="ID", help="Dual control: the monitor (监控人) present.")
@click.option("--monitor-totp", default=None, help="Dual control: the monitor's TOTP code.")
@click.option("--keyserver", default=None, metavar="URL", envvar="INVESTIGATOR_KEYSERVER", show_envvar=True,
              help="Use a key server instead of the embedded service (default: $INVESTIGATOR_KEYSERVER).")
@click.option("--cafile", default=None, type=click.Path(exists=True, dir_okay=False), help="CA for an https key server.")
@key_dir_option
@utc_option
@json_option
def open_cmd(archive: Path, grant: str, person: str, totp: str | None, session: str | None, monitor: str | None,
             monitor_totp: str | None, keyserver: str | None, cafile: str | None, key_dir: Path | None,
             in_utc: bool, as_json: bool) -> None:
    """Open a case and show what it holds (打开案件).

    Counts, window, scope, fields (no content).

    \b
    Runs the same checks as a notebook's open_case(): grant, operator, identity, policy.
    With --keyserver (or INVESTIGATOR_KEYSERVER), every request is signed with the
    person's personal key (passphrase from INVESTIGATOR_KEY_PASSPHRASE or a prompt);
    no archive passphrase is read. Times are shown in the archive's time zone with their
    offset; --utc shows UTC (--json is always UTC).
    Examples:
      investigator open ./case-archive --grant G-1a2b --as sunli --totp 123456
      investigator open ./case-archive --grant G-1a2b --as sunli --session ivs1.... --keyserver http://127.0.0.1:8765
    """
    from investigator.access.case import open_case
    from investigator.vault.store import Archive

    passphrase = signing = None
    if keyserver:
        opened = Archive.open(archive)
        signing = person_key(opened, person, key_dir)
    else:
        passphrase = archive_passphrase()
    case = open_case(archive, grant=grant, person=person, totp=totp, session=session, monitor=monitor,
                     monitor_totp=monitor_totp, keyserver=keyserver, cafile=cafile, passphrase=passphrase,
                     signing_key=signing)
    info = case.info()
    if as_json:
        echo_json(info)
        return
    click.echo(f"case {info['case']} (grant {info['grant_id']}) opened by {info['person']}")
    zone = info["window"]["tz"]
    click.echo(f"  window: {shown_time(info['window']['start'], zone, utc=in_utc)} .. "
               f"{shown_time(info['window']['end'], zone, utc=in_utc)} ({'UTC' if in_utc else zone})")
    click.echo(f"  fields: {', '.join(info['fields'])}   scope: {info['scope'] or 'whole window'}")
    click.echo(f"  {info['messages']} messages in {info['conversations']} conversations from {info['senders']} senders; "
               f"{info['events']} events")


@click.command()
@archive_argument
@click.option("--listen", default="127.0.0.1:8765", show_default=True, metavar="HOST:PORT",
              help="Address to listen on. Loopback by default; expose it only behind TLS.")
@click.option("--cert", "certfile", default=None, type=click.Path(exists=True, dir_okay=False),
              help="TLS certificate (PEM); serves https.")
@click.option("--key", "keyfile", default=None, type=click.Path(exists=True, dir_okay=False),
              help="TLS private key (PEM) for --cert.")
@click.option("--rate", default=20.0, show_default=True,
              help="Requests per second per client address, before authentication (burst 3x).")
@click.option("--person-rate", default=20.0, show_default=True,
              help="Requests per second per person, once their signature verified (burst 3x).")
@click.option("--notifier", "notifiers", multiple=True, metavar="PATH",
              help="A circuit-breaker notifier command (absolute path) this server may run when the signed policy "
                   "names it ([breaker] notify); repeatable. Others are not run (audited as not_allowed).")
@click.option("--shared-totp-state", is_flag=True,
              help="Serve although the archive keeps TOTP counters and lock-outs in its own folder (no --state-dir "
                   "at init): clients who can write that folder could replay a used code or clear a lock-out. "
                   "For demos and tests.")
def keyserver(archive: Path, listen: str, certfile: str | None, keyfile: str | None, rate: float,
              person_rate: float, notifiers: tuple[str, ...], shared_totp_state: bool) -> None:
    """Serve chunk keys to notebooks (启动密钥服务).

    The only process holding the master keys.

    \b
    Accepts only requests signed with a person's live personal key (±120 s, no
    replayed nonce); checks grant, identity and policy itself on every request;
    releases only keys of chunks overlapping the grant's window; rate-limits per
    client address and per person; audits everything.
    The master keys come from the archive's custody ([custody] in archive.toml):
    the key file (INVESTIGATOR_PASSPHRASE, else a prompt), a PKCS#11 token
    (INVESTIGATOR_PKCS11_MODULE, INVESTIGATOR_PKCS11_PIN) or OpenBao transit
    (BAO_ADDR, BAO_TOKEN); opening it is audited.
    TOTP counters and lock-outs must live on this host (the archive created with
    --state-dir): otherwise the server refuses to start, unless --shared-totp-state.
    When the circuit breaker holds a bundle, the server locks the accounts the policy
    names and runs the policy's notifier, but only a command allowed here with --notifier
    (the policy is an admin's; the programs run next to the master keys are the custodian's).
    Examples:
      INVESTIGATOR_PASSPHRASE=... investigator keyserver ./case-archive --listen 127.0.0.1:8765
      investigator keyserver ./case-archive --notifier /usr/local/bin/file-security-ticket
    """
    from investigator.vault.store import Archive
    from investigator.access.keyserver import RateLimit, serve

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter("expected HOST:PORT, the port from 0 to 65535", param_hint="--listen")
    if any(not n.startswith("/") for n in notifiers):
        raise click.BadParameter("a notifier is an absolute path", param_hint="--notifier")
    opened = Archive.open(archive)
    if not opened.config.custody.get("state_dir") and not shared_totp_state:
        from investigator.errors import ConfigError

        raise ConfigError("this archive keeps TOTP counters and lock-outs in its own folder, which the key server's "
                          "clients can write (a used code could be replayed, a lock-out cleared)",
                          hint="create the archive on this host with 'investigator init --state-dir DIR' "
                               "(docs/admin.md), or pass --shared-totp-state for a demo or a test")
    keys = unlock(opened, "keyserver", custodian=True)
    from investigator.settings import Settings
    from investigator.vault.audited_state import HostRecord

    server = serve(opened, keys, host=host, port=int(port), certfile=certfile, keyfile=keyfile,
                   limit=RateLimit(rate=rate, burst=max(1, int(rate * 3)), person_rate=person_rate,
                                   person_burst=max(1, int(person_rate * 3))),
                   record=HostRecord(Settings.from_environ(os.environ).verified_dir), notifiers=notifiers)
    stopped: dict[str, str] = {}

    def on_signal(signum: int, _frame: object) -> None:
        # a service manager stops with SIGTERM: end serve_forever from another thread (it would wait on itself)
        stopped["signal"] = signal.Signals(signum).name
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)  # before the line below: a reader of it may stop us at once
    scheme = "https" if certfile else "http"
    click.echo(f"key server for archive {opened.archive_id} listening on {scheme}://{host}:{server.server_address[1]}",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        stopped["signal"] = "SIGINT"
    finally:
        server.server_close()
        opened.audit.append("keyserver", "keyserver.stop", listen, {"signal": stopped.get("signal", "")})


def register(main: click.Group) -> None:
    main.add_command(open_cmd)
    main.add_command(keyserver)
