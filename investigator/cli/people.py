"""People commands: the org directory, enrolment (signing key + TOTP), key revocation, lock-outs, breaker locks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import click

from investigator.authority.directory import DirectoryStore, Person, add_people, link_identity, read_people_csv, set_status
from investigator.cli.options import (admin_option, admin_signer, archive_argument, cafile_option, desk, echo_json,
                                      json_option, key_dir_option, key_server, keyserver_option, person_key,
                                      personal_passphrase, reason_option, split_multi, unlock, utc_now)
from investigator.errors import ConfigError
from investigator.settings import KEY_PASSPHRASE_ENV
from investigator.vault.store import Archive

NEW_KEY_PASSPHRASE_ENV = "INVESTIGATOR_NEW_KEY_PASSPHRASE"


def _policy_or_default(archive: Archive):
    from investigator.authority.policy import Policy, PolicyStore

    try:
        return PolicyStore(archive).load(DirectoryStore(archive).load())
    except ConfigError:
        return Policy.default()


@click.group()
def people() -> None:
    """The org directory (人员名录), admin only.

    People, roles, supervisors, chat identities, keys.

    \b
    Every change is signed by an admin and audited. Example:
      investigator people add ./case-archive --id zhangwei --name 张伟 --role agent \\
          --supervisor zhaomin --group 客服一组 --as wugang
    """


@people.command("add")
@archive_argument
@click.option("--id", "pid", required=True, help="Person id (letters, digits, . _ -).")
@click.option("--name", required=True, help="Display name.")
@click.option("--role", "roles", multiple=True, help="Role from the policy (repeatable).")
@click.option("--supervisor", default="", help="Id of the direct supervisor (approves their requests).")
@click.option("--dept", default="", help="Department.")
@click.option("--group", "groups", multiple=True, help="Team / group (repeatable).")
@click.option("--identity", "identities", multiple=True, metavar="PLATFORM:ACCOUNT",
              help="Chat identity, e.g. slack:U0ZHANGWEI, wecom:zhangwei, wechat:wxid_x (repeatable).")
@admin_option
@key_dir_option
def add_cmd(archive: Path, pid: str, name: str, roles: tuple[str, ...], supervisor: str, dept: str,
            groups: tuple[str, ...], identities: tuple[str, ...], as_id: str | None, key_dir: Path | None) -> None:
    """Add (or update) one person (添加或更新人员).

    \b
    Examples:
      # bootstrap the first admin with the archive passphrase (no --as)
      INVESTIGATOR_PASSPHRASE=... investigator people add ./case-archive --id wugang --name 吴刚 --role admin
      # later changes are signed by an admin
      investigator people add ./case-archive --id zhangwei --name 张伟 --role agent --supervisor zhaomin --as wugang
    """
    opened = Archive.open(archive)
    person = Person(id=pid, name=name, department=dept, groups=tuple(groups), supervisor=supervisor,
                    roles=split_multi(roles), identities=tuple(identities))
    directory = add_people(opened, [person], signer=admin_signer(opened, as_id, key_dir), now=utc_now(),
                           policy=_policy_or_default(opened))
    click.echo(f"added {pid} (directory version {directory.version})")


@people.command("import")
@archive_argument
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@admin_option
@key_dir_option
def import_cmd(archive: Path, file: Path, as_id: str | None, key_dir: Path | None) -> None:
    """Import people from a CSV file (批量导入人员).

    Add or update people from a CSV file (id,name,department,groups,supervisor,roles,identities).

    \b
    Lists are ';'-separated; identities are platform:account. Example:
      investigator people import ./case-archive data_samples/people.csv --as wugang
    """
    opened = Archive.open(archive)
    incoming = read_people_csv(file)
    directory = add_people(opened, incoming, signer=admin_signer(opened, as_id, key_dir), now=utc_now(),
                           policy=_policy_or_default(opened), action="import")
    click.echo(f"imported {len(incoming)} people (directory version {directory.version})")


@people.command("list")
@archive_argument
@json_option
def list_cmd(archive: Path, as_json: bool) -> None:
    """List people (列出人员).

    Signatures of every directory version are checked first.

    \b
    Example:
      investigator people list ./case-archive
    """
    directory = DirectoryStore(Archive.open(archive)).load()
    if as_json:
        echo_json({"version": directory.version, "people": [p.to_json() for p in directory.people]})
        return
    for p in directory.people:
        key = p.current_key.key_id if p.current_key else "-"
        click.echo(f"{p.id:<12} {p.name:<8} {p.status:<6} roles={','.join(p.roles) or '-':<22} "
                   f"supervisor={p.supervisor or '-':<10} groups={','.join(p.groups) or '-'} key={key} "
                   f"totp={'yes' if p.totp_enrolled else 'no'}")


@people.command("deactivate")
@archive_argument
@click.argument("person_id")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@admin_option
@key_dir_option
def deactivate_cmd(archive: Path, person_id: str, reason: str, as_id: str | None, key_dir: Path | None) -> None:
    """Mark a person as left (标记人员离职).

    Their requests, approvals and grants stop being valid.

    \b
    Example:
      investigator people deactivate ./case-archive liuyang --reason "left the company" --as wugang
    """
    opened = Archive.open(archive)
    set_status(opened, person_id, "left", signer=admin_signer(opened, as_id, key_dir), now=utc_now(), reason=reason)
    click.echo(f"{person_id} deactivated")


@people.command("link-identity")
@archive_argument
@click.argument("person_id")
@click.argument("identities", nargs=-1, required=True)
@admin_option
@key_dir_option
def link_identity_cmd(archive: Path, person_id: str, identities: tuple[str, ...], as_id: str | None,
                      key_dir: Path | None) -> None:
    """Link chat identities to a person (关联聊天账号).

    Identities are platform:account; searches then cover all their accounts.

    \b
    Example:
      investigator people link-identity ./case-archive zhangwei wechat:wxid_zw2024 phone:+8613800000000 --as wugang
    """
    opened = Archive.open(archive)
    link_identity(opened, person_id, identities, signer=admin_signer(opened, as_id, key_dir), now=utc_now())
    click.echo(f"linked {len(identities)} identities to {person_id}")


@people.command("enroll")
@archive_argument
@click.argument("person_id")
@admin_option
@key_dir_option
@click.option("--kdf-cost", default=17, show_default=True, type=click.IntRange(14, 22),
              help="scrypt cost of the personal key file, as a power of two.")
@click.option("--no-qr", is_flag=True, help="Print the otpauth:// URI only, no QR code.")
@keyserver_option
@cafile_option
def enroll_cmd(archive: Path, person_id: str, as_id: str | None, key_dir: Path | None, kdf_cost: int,
               no_qr: bool, keyserver: str | None, cafile: str | None) -> None:
    """Enroll a person (配发签名密钥与动态验证码).

    Give a person a signing key (their own passphrase) and a TOTP secret, shown once.

    \b
    Needs the admin's key passphrase (INVESTIGATOR_KEY_PASSPHRASE) and the new person's passphrase
    (INVESTIGATOR_NEW_KEY_PASSPHRASE, else a prompt; when bootstrapping without --as,
    INVESTIGATOR_KEY_PASSPHRASE). With --keyserver (or INVESTIGATOR_KEYSERVER) the key server makes
    and seals the TOTP secret and no archive passphrase is read; without one (embedded mode) the
    archive passphrase (INVESTIGATOR_PASSPHRASE) unlocks the custody here. Examples:
      investigator people enroll ./case-archive zhangwei --as wugang
      investigator people enroll ./case-archive zhangwei --as wugang --keyserver http://127.0.0.1:8765
    """
    from investigator.authority.identity import check_enrollable, create_person_key, enroll, register_enrolment

    opened = Archive.open(archive)
    if keyserver and not as_id:
        raise ConfigError("with a key server, an admin enrols (--as ADMIN); bootstrapping without --as is the "
                          "custodian's job on the key server's host")
    signer = admin_signer(opened, as_id, key_dir)
    env = NEW_KEY_PASSPHRASE_ENV if as_id or os.environ.get(NEW_KEY_PASSPHRASE_ENV) else KEY_PASSPHRASE_ENV
    if keyserver:
        # the key file is made here, the TOTP secret on the key server, then the admin signs the directory change
        check_enrollable(opened, person_id, actor=signer.id, now=utc_now())
        passphrase = personal_passphrase(person_id, env=env, confirm=True)
        key_path, public = create_person_key(opened, person_id, passphrase=passphrase, key_dir=key_dir,
                                             kdf_n=2**kdf_cost)
        try:
            totp = key_server(keyserver, signer.id, signer.key, cafile).enroll_totp(person_id)
            register_enrolment(opened, person_id, public, signer=signer, now=utc_now())
        except Exception:
            key_path.unlink(missing_ok=True)  # no orphan key file for a refused enrolment
            raise
        key_id, uri = public.key_id, totp.uri
    else:
        keys = unlock(opened, as_id or "archive")
        passphrase = personal_passphrase(person_id, env=env, confirm=True)
        result = enroll(opened, keys, person_id, signer=signer, passphrase=passphrase, now=utc_now(),
                        key_dir=key_dir, kdf_n=2**kdf_cost)
        key_path, key_id, uri = result.key_path, result.key_id, result.totp_uri
    click.echo(f"enrolled {person_id}: key {key_id} in {key_path}")
    click.echo("TOTP secret -- shown once; add it to an authenticator app now / 仅显示一次:")
    click.echo(f"  {uri}")
    if not no_qr:
        click.echo(_qr_text(uri))


def _qr_text(uri: str) -> str:
    try:
        import segno
    except ImportError:  # the URI above is enough
        return "(install 'segno' to see a QR code here)"
    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


@people.command("revoke-key")
@archive_argument
@click.argument("person_id")
@click.option("--key-id", default=None, help="Revoke this key only (default: every live key).")
@reason_option("Why (kept in the directory change and the audit log).")
@admin_option
@key_dir_option
def revoke_key_cmd(archive: Path, person_id: str, key_id: str | None, reason: str, as_id: str | None,
                   key_dir: Path | None) -> None:
    """Revoke a person's signing key (吊销个人签名密钥).

    Requests and approvals signed with it are refused.

    \b
    Example:
      investigator people revoke-key ./case-archive zhangwei --reason "laptop lost" --as wugang
    """
    from investigator.authority.identity import revoke_key

    opened = Archive.open(archive)
    revoke_key(opened, person_id, signer=admin_signer(opened, as_id, key_dir), now=utc_now(), reason=reason,
               key_id=key_id)
    click.echo(f"revoked the key(s) of {person_id}; re-enrol to issue a new one")


@people.command("unlock")
@archive_argument
@click.argument("person_id")
@click.option("--reason", default="", help="Why the circuit breaker's lock is lifted (kept in the signed unlock "
              "record and the audit log); required when the person is locked by the breaker.")
@click.option("--totp", default=None, help="Your (the admin's) current TOTP code, for lifting a breaker lock "
              "(else a prompt).")
@admin_option
@key_dir_option
@keyserver_option
@cafile_option
def unlock_cmd(archive: Path, person_id: str, reason: str, totp: str | None, as_id: str | None,
               key_dir: Path | None, keyserver: str | None, cafile: str | None) -> None:
    """Unlock a person (解冻或解锁账号).

    Lift the circuit breaker's locks (熔断 冻结), or clear a TOTP lock-out.

    \b
    A person the circuit breaker locked (see 'people locks') is unlocked only by an admin, never by
    themselves, with --reason, the admin's TOTP code and the admin's signature on the unlock record
    (org/locks/UNLOCK-....json); every attempt is audited. Without breaker locks, this clears a TOTP
    lock-out (after repeated failed codes) before it runs out. With --keyserver (or
    INVESTIGATOR_KEYSERVER) the key server checks the code and files the record (the TOTP state lives there).
    Examples:
      investigator people unlock ./case-archive sunli --as wugang --reason "false positive: customer's own number" \\
          --totp 123456
      investigator people unlock ./case-archive zhangwei --as wugang
      investigator people unlock ./case-archive zhangwei --as wugang --keyserver http://127.0.0.1:8765
    """
    from investigator.authority.locks import active_locks, new_unlock_id, unlock_body
    from investigator.schema import canonical_json

    opened = Archive.open(archive)
    locks = active_locks(opened, DirectoryStore(opened).load(), person_id)
    if locks:
        if not as_id:
            raise ConfigError("an admin lifts a circuit-breaker lock (--as ADMIN) / 需管理员 (--as ADMIN) 解冻")
        key = person_key(opened, as_id, key_dir)
        code = totp or click.prompt(f"TOTP code of {as_id} / 动态验证码")
        now = utc_now()
        unlock_id = new_unlock_id(now)
        body = unlock_body(opened, person_id, [lk.id for lk in locks], admin=as_id, reason=reason, signed_at=now,
                           unlock_id=unlock_id)
        signature = key.sign(canonical_json(body))
        if keyserver:
            lifted = key_server(keyserver, as_id, key, cafile).unlock_account(
                person_id, reason=reason, totp=code, unlock_id=unlock_id, signed_at=now, signature=signature)
        else:
            lifted = desk(opened, as_id).unlock_account(person_id, admin=as_id, reason=reason, totp=code,
                                                        unlock_id=unlock_id, signed_at=now, signature=signature,
                                                        now=now)
        click.echo(f"{person_id} unlocked / 已解冻 ({', '.join(lifted)}; {unlock_id})")
        return
    if keyserver:
        if not as_id:
            raise ConfigError("with a key server, an admin clears lock-outs (--as ADMIN)")
        key_server(keyserver, as_id, person_key(opened, as_id, key_dir), cafile).clear_lockout(person_id)
    else:
        signer = admin_signer(opened, as_id, key_dir)
        desk(opened, signer.id).clear_lockout(person_id, admin=signer.id)
    click.echo(f"lock-out of {person_id} cleared")


@people.command("locks")
@archive_argument
@click.option("--all", "show_all", is_flag=True, help="Lifted locks too.")
@json_option
def locks_cmd(archive: Path, show_all: bool, as_json: bool) -> None:
    """List the circuit breaker's account locks (列出冻结账号).

    Active ones (--all for lifted ones too), each verified.

    \b
    A lock names the person, the categories found, the held bundle and the grant; a lifted lock also
    the admin who unlocked it, when and why. A record that does not verify is shown with PROBLEM (and
    still locks: fail closed). Examples:
      investigator people locks ./case-archive
      investigator people locks ./case-archive --all --json
    """
    from investigator.authority.locks import load_locks

    opened = Archive.open(archive)
    locks = [lk for lk in load_locks(opened, DirectoryStore(opened).load()) if show_all or lk.active]
    if as_json:
        echo_json({"locks": [lk.summary() for lk in locks]})
        return
    if not locks:
        click.echo("no account locks / 无冻结账号")
    for lk in locks:
        info = lk.summary()
        state = "LOCKED / 已冻结" if lk.active else (f"unlocked {info['unlocked']} by {info['unlocked_by']}: "
                                                    f"{info['unlock_reason']}")
        click.echo(f"{lk.id}  {lk.person:<12} {info['created']}  categories={','.join(info['categories'] or []) or '-'}"
                   f"  bundle={info['bundle_id']}  {state}{'  PROBLEM: ' + lk.problem if lk.problem else ''}")


def register(group: click.Group) -> None:
    group.add_command(people)
