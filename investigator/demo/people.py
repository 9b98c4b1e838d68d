"""DEMO ONLY: demo people with public secrets, the default policy, and one approved grant.

    >>> demo = demo_authority(archive, keys, now=now)   # doctest: +SKIP

Part of :mod:`investigator.authority.grants`. Never use these identities for real evidence.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from investigator import _crypto
from investigator.authority.directory import ADMIN_ROLE, DirectoryStore, Person, Signer
from investigator.errors import PolicyDenied
from investigator.authority.policy import Policy, PolicyStore
from investigator.authority.consent import add_consent_bytes
from investigator.authority.grants.workflow import approve, new_request
from investigator.authority.directory import add_people, read_people_csv
from investigator.authority.identity import enroll, unlock_person_key
from investigator.authority.policy import default_policy_text
from investigator.vault.store import Archive
from investigator.custody.file import MasterKeys


# --- the demo --------------------------------------------------------------------------------

#: DEMO ONLY. Deterministic TOTP secrets and passphrases so the demo and the tests can compute codes.
#: Never use these for real people: anyone who reads this file can log in as them.
DEMO_ONLY_TOTP_SECRETS: dict[str, bytes] = {
    pid: hashlib.sha1(f"investigator DEMO ONLY totp secret for {pid}".encode()).digest()
    for pid in ("wugang", "zhouzong", "sunli", "lixia", "zhaomin", "zhangwei", "zhengjie", "qianjin", "xuming",
                "liuyang")
}
DEMO_ONLY_PASSPHRASE = "DEMO-ONLY-passphrase-{person}"
DEMO_KDF_N = 2**14  # DEMO ONLY: low scrypt cost so the demo runs in seconds
#: DEMO ONLY: the text of the demo customer's consent form (a real one is a signed PDF or scan).
DEMO_CONSENT_TEXT = ("DEMO ONLY -- 客户知情同意书（电子签名版）\n"
                     "本人王芳（客户编号 wangfang）同意贵公司为处理本人 2026-11-18 的投诉，调取本人与客服的聊天记录。\n"
                     "I, Wang Fang (customer wangfang), consent to the retrieval of my chat records with customer "
                     "service for handling my complaint of 2026-11-18.\n"
                     "电子签名 / e-signature: 王芳  2026-11-18\n")

_BUILTIN_PEOPLE = (  # used when data_samples/people.csv is absent
    ("zhouzong", "周总", "总经办", "管理层", "", "executive"),
    ("sunli", "孙丽", "法务部", "法务部", "zhouzong", "legal;operator"),
    ("lixia", "李霞", "法务部", "法务部", "zhouzong", "legal"),
    ("wugang", "吴刚", "信息技术部", "信息技术部", "zhouzong", "admin"),
    ("zhengjie", "郑洁", "审计部", "审计部", "zhouzong", "auditor"),
    ("zhaomin", "赵敏", "客服部", "客服一组", "zhouzong", "team_lead"),
    ("zhangwei", "张伟", "客服部", "客服一组", "zhaomin", "agent"),
    ("qianjin", "钱进", "安保部", "护卫队;安保部", "zhouzong", "team_lead;operator"),
    ("xuming", "徐明", "采购部", "采购部;项目A", "zhouzong", "team_lead"),
    ("liuyang", "刘洋", "采购部", "采购部;项目A", "xuming", "agent"),
)


def demo_totp(person_id: str, at: datetime) -> str:
    """DEMO ONLY: the TOTP code of a demo person at ``at``, from the public demo secret."""
    return _crypto.totp(DEMO_ONLY_TOTP_SECRETS[person_id], at.timestamp())


@dataclass(frozen=True)
class DemoAuthority:
    """What :func:`demo_authority` set up. DEMO ONLY: its secrets are public constants."""

    people: tuple[str, ...]
    enrolled: tuple[str, ...]
    grant_path: Path
    grant_id: str
    operator_id: str
    operator_passphrase: str
    key_dir: Path
    review_grant_id: str = ""  # the month-wide grant (both planted cases, the 加班费 messages)

    def totp_for(self, person_id: str, now: datetime) -> str:
        """The DEMO-ONLY TOTP code of ``person_id`` at ``now`` (each code is accepted once)."""
        return demo_totp(person_id, now)

    def passphrase_for(self, person_id: str) -> str:
        return DEMO_ONLY_PASSPHRASE.format(person=person_id)


def demo_authority(archive: "Archive", keys: "MasterKeys", *, now: datetime, key_dir: Path | None = None,
                   people_csv: Path | None = None, kdf_n: int = DEMO_KDF_N) -> DemoAuthority:
    """DEMO ONLY: people, enrolment with public secrets, the default policy, and one approved grant.

    Imports ``data_samples/people.csv`` (or a built-in list), enrols the demo
    people with :data:`DEMO_ONLY_TOTP_SECRETS`, and has 孙丽 (sunli, legal +
    operator) request the complaint window 2026-11-18 14:00-17:00 (archive
    time zone), approved by her supervisor 周总 (zhouzong) with a computed code.
    Warns on every call: these identities are not secret.
    """

    warnings.warn("DEMO ONLY: demo people use public TOTP secrets and passphrases (investigator.authority.grants."
                  "DEMO_ONLY_TOTP_SECRETS); never use this archive for real evidence", UserWarning, stacklevel=2)
    key_dir = Path(key_dir) if key_dir else archive.layout.demo_keys_dir
    csv_path = people_csv or Path(__file__).resolve().parents[2] / "data_samples" / "people.csv"
    if csv_path.exists():
        people = read_people_csv(csv_path)
    else:
        people = [Person(id=p[0], name=p[1], department=p[2], groups=tuple(p[3].split(";")), supervisor=p[4],
                         roles=tuple(p[5].split(";"))) for p in _BUILTIN_PEOPLE]
    known = {p.id for p in people}
    # the demo's legal reviewer (法律顾问), so the review -> release path runs end to end
    people += [Person(id=p[0], name=p[1], department=p[2], groups=tuple(p[3].split(";")), supervisor=p[4],
                      roles=tuple(p[5].split(";"))) for p in _BUILTIN_PEOPLE if p[0] == "lixia" and p[0] not in known]
    root = Signer.archive(keys.signing)
    when = now
    add_people(archive, people, signer=root, now=when, policy=Policy.default(), action="import")
    PolicyStore(archive).install(default_policy_text(), signer=root, directory=DirectoryStore(archive).load(),
                                 now=when, note="DEMO default policy")
    directory = DirectoryStore(archive).load()
    demo_ids = [pid for pid in DEMO_ONLY_TOTP_SECRETS if pid in directory]
    # the admin first, signed with the archive key (bootstrap); then the admin signs the rest
    admin_id = next(pid for pid in demo_ids if ADMIN_ROLE in directory.person(pid).roles)
    ordered = [admin_id] + [pid for pid in demo_ids if pid != admin_id]
    signer = root
    for pid in ordered:
        enroll(archive, keys, pid, signer=signer, passphrase=DEMO_ONLY_PASSPHRASE.format(person=pid), now=when,
               key_dir=key_dir, kdf_n=kdf_n, totp_secret=DEMO_ONLY_TOTP_SECRETS[pid])
        if pid == admin_id:
            signer = Signer(admin_id, unlock_person_key(archive, admin_id,
                                                        DEMO_ONLY_PASSPHRASE.format(person=admin_id),
                                                        key_dir=key_dir))
    zone = archive.config.zone
    start = datetime(2026, 11, 18, 14, 0, tzinfo=zone)
    end = datetime(2026, 11, 18, 17, 0, tzinfo=zone)
    operator = "sunli"
    sunli_key = unlock_person_key(archive, operator, DEMO_ONLY_PASSPHRASE.format(person=operator), key_dir=key_dir)
    case = "DEMO-2026-11-18-complaint"
    # the customer's signed consent (客户知情同意书) is registered before the request that rests on it
    consent = add_consent_bytes(archive, keys, DEMO_CONSENT_TEXT.encode(), name="DEMO-consent-wangfang.txt",
                                case=case, customer="wangfang", uploader=operator, signing_key=sunli_key, now=when)
    signed = new_request(archive, requester=operator, signing_key=sunli_key, case=case,
                         purpose="customer_complaint", start=start, end=end, fields=("metadata", "content"),
                         reason="DEMO: customer complaint about delivery delay and agent conduct, 2026-11-18",
                         legal_basis="DEMO: 内部调查制度", consent=consent.id, now=when)
    approver = directory.person(operator).supervisor or "zhouzong"
    approver_key = unlock_person_key(archive, approver, DEMO_ONLY_PASSPHRASE.format(person=approver), key_dir=key_dir)
    result = approve(archive, keys, signed.id, approver=approver, signing_key=approver_key,
                     totp=demo_totp(approver, when), now=when,
                     note="DEMO approval")
    if result.grant_path is None:
        raise PolicyDenied(result.decision.reason, rule=result.decision.rule, decision=result.decision)
    review = _review_grant(archive, keys, operator=operator, operator_key=sunli_key, approver=approver,
                           approver_key=approver_key, now=when)
    return DemoAuthority(people=tuple(p.id for p in people), enrolled=tuple(ordered), grant_path=result.grant_path,
                         grant_id=result.grant_path.stem, operator_id=operator,
                         operator_passphrase=DEMO_ONLY_PASSPHRASE.format(person=operator), key_dir=key_dir,
                         review_grant_id=review)


#: DEMO ONLY: the second grant's case — the whole demo month, so both planted cases (the complaint of
#: 2026-11-18 and the misconduct of 2026-11-24) and every planted 加班费 message are inside one grant.
REVIEW_CASE = "DEMO-2026-11-review"
REVIEW_WINDOW = ((2026, 11, 1), (2026, 12, 1))


def _review_grant(archive: Archive, keys: MasterKeys, *, operator: str, operator_key: _crypto.SigningKey,
                  approver: str, approver_key: _crypto.SigningKey, now: datetime) -> str:
    """DEMO ONLY: request and approve the month-wide review grant; returns its id.

    The approver's code of ``now``'s step was just used for the complaint grant (codes are
    single-use), so the next step's code is given, which the policy's skew accepts. Raises
    PolicyDenied when it is not granted.
    """
    zone = archive.config.zone
    (y0, m0, d0), (y1, m1, d1) = REVIEW_WINDOW
    signed = new_request(archive, requester=operator, signing_key=operator_key, case=REVIEW_CASE,
                         purpose="internal_audit", start=datetime(y0, m0, d0, tzinfo=zone),
                         end=datetime(y1, m1, d1, tzinfo=zone), fields=("metadata", "content"),
                         reason="DEMO: review of the demo month (complaint 2026-11-18, misconduct 2026-11-24, "
                                "overtime pay 加班费)", legal_basis="DEMO: 内部调查制度", now=now)
    result = approve(archive, keys, signed.id, approver=approver, signing_key=approver_key,
                     totp=demo_totp(approver, now + timedelta(seconds=30)), now=now, note="DEMO approval")
    if result.grant_path is None:
        raise PolicyDenied(result.decision.reason, rule=result.decision.rule, decision=result.decision)
    return result.grant_path.stem

