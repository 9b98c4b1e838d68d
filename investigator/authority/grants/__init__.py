"""Retrieval requests, approvals and grants: who asked, who approved, and how to prove it later.

    >>> req = new_request(archive, requester="sunli", signing_key=sunli_key, case="C-1",
    ...                   purpose="customer_complaint", start=t0, end=t1, fields=("metadata", "content"),
    ...                   reason="complaint 2026-11-18", consent="CONSENT-20261118-1a2b3c4d", now=now)  # doctest: +SKIP
    >>> result = approve(archive, keys, req.id, approver="zhouzong", signing_key=zhou_key,
    ...                  totp="123456", now=now)                                            # doctest: +SKIP
    >>> grant = load_grant(result.grant_path)                                               # doctest: +SKIP
    >>> grant.verify(archive, now=now)       # raises GrantInvalid / GrantExpired            # doctest: +SKIP
    >>> grant.window, grant.scope, grant.fields, grant.operator                             # doctest: +SKIP

A grant file (``ARCHIVE/org/grants/<id>.json``, format in docs/policy.md,
"Grant file") holds the request body and the requester's signature, each
approval with the approver's signature and the key service's attestation that
the approver passed a TOTP check, and a grant body (request hash, approval
hashes, expiry) signed with the archive key. Anyone with the archive's public
material (archive key, directory, policy, revocation list) can verify it; any
change to a signed field breaks it. Every decision is audited with its rule.
"""

from investigator.authority.grants.documents import (APPROVAL_FORMAT, DECISIONS, GRANT_FORMAT, Approval, Grant,
                                                     SignedRequest, body_hash, find_grant, load_grant,
                                                     request_field_hashes, revocations)
from investigator.authority.grants.workflow import (ApprovalResult, Presigned, approval_body, approve, explain,
                                                    list_requests, load_request, new_request, request_approvals,
                                                    request_status, revoke_grant)

__all__ = ["APPROVAL_FORMAT", "DECISIONS",
           "GRANT_FORMAT", "Approval", "ApprovalResult", "Grant", "Presigned", "SignedRequest", "approval_body", "approve",
           "body_hash", "explain", "find_grant", "list_requests", "load_grant",
           "load_request", "new_request", "request_approvals", "request_field_hashes", "request_status",
           "revocations", "revoke_grant"]
