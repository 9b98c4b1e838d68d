"""Backup tiers: the seed's backup table as the ``[backup.tiers.*]`` section of the policy, and the schedule lines.

    >>> tiers = BackupTiers.default()
    >>> [(t.name, t.retention_days) for t in tiers]
    [('hourly', 183), ('weekly', 366), ('emergency', 1096)]
    >>> tiers["weekly"].cron
    '0 3 * * 0'

The seed's table (聊天记录备份策略): 实时备份 every hour to cloud + local mirror, kept 6 months;
周期性备份 every Sunday to cold storage, kept 1 year; 紧急备份 on an event to an encrypted removable
disk, kept 3 years. The default policy carries it (``investigator policy show``); an installed
policy may change targets, times and retention, and a policy without the section gets the default.
Nothing runs in the background: :func:`schedule_lines` prints what to install (cron or systemd).
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from investigator.authority.directory import DirectoryStore
from investigator.authority.policy import PolicyStore, default_policy_text
from investigator.errors import ConfigError
from investigator.vault.store import Archive

TIER_NAMES = ("hourly", "weekly", "emergency")
_CRON_FIELDS = 5


@dataclass(frozen=True)
class Tier:
    """One row of the backup table: when it runs, where to, how long its copies are kept."""

    name: str
    label: str
    retention_days: int
    targets: tuple[str, ...] = ()
    cron: str = ""  # "" for an event-triggered tier
    on_calendar: str = ""
    case_required: bool = False
    seal_required: bool = False

    def retain_until(self, now: datetime) -> datetime:
        """Until when a copy made at ``now`` is kept (the S3 Object Lock retain-until)."""
        return now + timedelta(days=self.retention_days)

    @property
    def scheduled(self) -> bool:
        return bool(self.cron)


def _tier(name: str, spec: Any) -> Tier:
    where = f"[backup.tiers.{name}]"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a table")
    known = {"label", "retention_days", "targets", "cron", "on_calendar", "case_required", "seal_required"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    days = spec.get("retention_days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ConfigError(f"{where}: retention_days must be a positive whole number of days")
    targets = spec.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise ConfigError(f"{where}: targets must be a list of directory paths or s3:// URLs")
    cron = str(spec.get("cron", ""))
    if cron and len(cron.split()) != _CRON_FIELDS:
        raise ConfigError(f"{where}: cron must have five fields (minute hour day month weekday), got {cron!r}")
    on_calendar = str(spec.get("on_calendar", ""))
    if bool(cron) != bool(on_calendar):
        raise ConfigError(f"{where}: give both cron and on_calendar (a scheduled tier) or neither (event-triggered)")
    return Tier(name=name, label=str(spec.get("label", name)), retention_days=days, targets=tuple(targets),
                cron=cron, on_calendar=on_calendar, case_required=bool(spec.get("case_required", False)),
                seal_required=bool(spec.get("seal_required", False)))


@dataclass(frozen=True)
class BackupTiers:
    """The tiers of one policy, by name."""

    tiers: tuple[Tier, ...]

    def __iter__(self) -> Iterator[Tier]:
        return iter(self.tiers)

    def __getitem__(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise ConfigError(f"no backup tier {name!r} in the policy (tiers: {', '.join(t.name for t in self.tiers)})")

    @classmethod
    def from_policy(cls, data: Mapping[str, Any]) -> "BackupTiers":
        """The ``[backup.tiers.*]`` of a parsed policy; the default policy's when it has none. Raises ConfigError."""
        section = data.get("backup")
        if section is None:
            return cls.default()
        if not isinstance(section, Mapping) or set(section) - {"tiers"}:
            raise ConfigError("[backup]: expected only [backup.tiers.<name>] tables")
        tiers = section.get("tiers", {})
        unknown = sorted(set(tiers) - set(TIER_NAMES))
        if unknown:
            raise ConfigError(f"[backup.tiers.{unknown[0]}]: unknown tier (known: {', '.join(TIER_NAMES)})")
        return cls(tuple(_tier(name, tiers[name]) for name in TIER_NAMES if name in tiers))

    @classmethod
    def default(cls) -> "BackupTiers":
        """The packaged default policy's tiers (the seed's table)."""
        return cls.from_policy_text(default_policy_text())

    @classmethod
    def from_policy_text(cls, text: str) -> "BackupTiers":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the policy is not valid TOML ({exc})") from exc
        if "backup" not in data:
            data = tomllib.loads(default_policy_text())
        return cls.from_policy(data)


def tiers_for(archive: Archive) -> BackupTiers:
    """The tiers of the archive's installed policy (its signature checked), the default ones when none is installed.

    Raises IntegrityError for an installed policy that does not verify, ConfigError for a bad section.
    """
    store = DirectoryStore(archive)
    if not archive.layout.policy_dir.exists() or not store.exists():
        return BackupTiers.default()
    try:
        policy = PolicyStore(archive).load(store.load())
    except ConfigError:
        return BackupTiers.default()  # no policy installed yet
    return BackupTiers.from_policy(policy.raw) if "backup" in policy.raw else BackupTiers.default()


#: where the scheduled runs' custody secret is kept (schedule_lines): root-only, never in the unit or crontab
ENV_FILE = "/etc/investigator/backup.env"


def schedule_lines(tiers: BackupTiers, archive: str, *, program: str = "investigator") -> dict[str, list[str]]:
    """What to install for the scheduled tiers: ``{"cron": [crontab lines], "systemd": [unit file lines]}``.

    One crontab line and one service + timer pair per (tier, target); event-triggered tiers are
    listed as comments. Nothing is installed here.
    """
    cron: list[str] = ["# investigator backups (the seed's 备份策略; install with `crontab -e`)",
                       f"# each run needs the custody's secret in its environment ({ENV_FILE}, root-only: "
                       "INVESTIGATOR_PASSPHRASE=... or the PKCS#11 / OpenBao variables; docs/admin.md, section 11): "
                       "without it the run stops at the passphrase prompt"]
    systemd: list[str] = []
    for tier in tiers:
        if not tier.scheduled:  # the sealing record needs the media's id (backup run refuses without it)
            cron.append(f"# {tier.name} ({tier.label}): on an event, by hand: {program} backup run "
                        f"{shlex.quote(archive)} --to /media/REMOVABLE --tier {tier.name} --case CASE-ID "
                        "--media-id MEDIA-ID")
            continue
        for number, target in enumerate(tier.targets, start=1):
            command = (f"{program} backup run {shlex.quote(archive)} --to {shlex.quote(target)} "
                       f"--tier {tier.name}")
            cron.append(f"{tier.cron} {command}")
            unit = f"investigator-backup-{tier.name}-{number}"
            systemd += [f"# /etc/systemd/system/{unit}.service", "[Unit]",
                        f"Description=investigator {tier.name} backup ({tier.label}) to {target}",
                        "[Service]", "Type=oneshot",
                        "# root-only (mode 600): INVESTIGATOR_PASSPHRASE=... or the PKCS#11 / OpenBao variables",
                        f"EnvironmentFile={ENV_FILE}", f"ExecStart={command}", "",
                        f"# /etc/systemd/system/{unit}.timer", "[Unit]",
                        f"Description=investigator {tier.name} backup timer", "[Timer]",
                        f"OnCalendar={tier.on_calendar}", "Persistent=true", "[Install]",
                        "WantedBy=timers.target", ""]
    return {"cron": cron, "systemd": systemd}
