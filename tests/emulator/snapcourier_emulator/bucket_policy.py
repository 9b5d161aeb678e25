"""Resource policy evaluation: S3 bucket policies and KMS key policies.

AWS decides a request on a resource from the caller's identity policies and the
resource's policy: an explicit Deny in either refuses it; within one account an
Allow in either suffices; across accounts the resource policy must Allow it too.
The world's IAM users have allow-all identity policies (and the `deny` knob stands
for a narrower one), so what is left to evaluate here is the resource policy.

Supported, per statement: Effect; Principal "*", {"AWS": account id | ARN of the
account (root, a user or a role: the world does not know which role a caller
acts as, so any principal ARN of the caller's account matches) | "*"},
{"Service": name}; Action and Resource (strings or lists, `*` and `?`
wildcards, actions case-insensitive); Condition with the operators
StringEquals, StringLike, StringNotEquals, ArnEquals, ArnLike and Bool on the
keys the caller's context gives (aws:PrincipalAccount, aws:SourceAccount,
aws:SourceArn, aws:SecureTransport - always "true": a real endpoint is HTTPS).
A statement that uses anything else (NotPrincipal, NotAction, NotResource, an
unknown operator or key) is skipped: it neither allows nor denies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ALLOW, DENY, NONE = "allow", "deny", "none"
ACCOUNT_RE = re.compile(r"^\d{12}$")
IAM_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):")
UNSUPPORTED = ("NotPrincipal", "NotAction", "NotResource")


@dataclass(frozen=True)
class Principal:
    """Who asks: an account (its IAM users and roles) or an AWS service."""

    account: str | None = None
    service: str | None = None
    # Condition keys of the request, lower-cased (aws:sourceaccount, ...).
    context: dict[str, str] = field(default_factory=dict)

    def condition_value(self, key: str) -> str | None:
        if key.lower() == "aws:securetransport":
            return "true"
        return self.context.get(key.lower())


def caller(account: str) -> Principal:
    """An IAM principal of `account`."""
    return Principal(account=account, context={"aws:principalaccount": account})


def service(name: str, source_account: str, source_arn: str) -> Principal:
    """An AWS service acting for `source_account` on `source_arn`."""
    return Principal(service=name, context={"aws:sourceaccount": source_account, "aws:sourcearn": source_arn})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _principal_matches(spec: Any, who: Principal) -> bool:
    if spec == "*":
        return True
    if not isinstance(spec, dict):
        return False
    if who.account is not None:
        for entry in _as_list(spec.get("AWS", [])):
            if not isinstance(entry, str):
                continue
            if entry == "*" or entry == who.account:
                return True
            match = IAM_ARN_RE.match(entry)
            if match is not None and match.group(1) == who.account:
                return True
    if who.service is not None:
        return who.service in _as_list(spec.get("Service", []))
    return False


CONDITION_OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringLike": lambda expected, actual: _wildcard(expected, actual),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": lambda expected, actual: _wildcard(expected, actual),
    "Bool": lambda expected, actual: actual.lower() == str(expected).lower(),
}


def _conditions_hold(conditions: Any, who: Principal) -> bool | None:
    """True/False, or None when the block uses what is not supported."""
    if not isinstance(conditions, dict):
        return None
    for operator, tests in conditions.items():
        check = CONDITION_OPERATORS.get(operator)
        if check is None or not isinstance(tests, dict):
            return None
        for key, expected in tests.items():
            actual = who.condition_value(key)
            if actual is None:
                return None
            values = [str(v) for v in _as_list(expected)]
            if operator == "StringNotEquals":
                if not all(check(v, actual) for v in values):
                    return False
            elif not any(check(v, actual) for v in values):
                return False
    return True


def _statement_applies(statement: Any, who: Principal, action: str, resource: str) -> bool:
    if not isinstance(statement, dict) or any(k in statement for k in UNSUPPORTED):
        return False
    if not _principal_matches(statement.get("Principal"), who):
        return False
    if not any(isinstance(a, str) and _wildcard(a, action, ignore_case=True)
               for a in _as_list(statement.get("Action", []))):
        return False
    if not any(isinstance(r, str) and _wildcard(r, resource) for r in _as_list(statement.get("Resource", []))):
        return False
    if "Condition" in statement:
        return _conditions_hold(statement["Condition"], who) is True
    return True


def evaluate(policy: str | bytes | None, who: Principal, action: str, resource: str) -> str:
    """DENY if a Deny statement applies, else ALLOW if an Allow does, else NONE."""
    if not policy:
        return NONE
    try:
        document = json.loads(policy)
    except (ValueError, TypeError):
        return NONE
    statements = _as_list(document.get("Statement", [])) if isinstance(document, dict) else []
    applying = [s for s in statements if _statement_applies(s, who, action, resource)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return DENY
    if any(s.get("Effect") == "Allow" for s in applying):
        return ALLOW
    return NONE


def permits(policy: str | bytes | None, who: Principal, action: str, resource: str, same_account: bool) -> bool:
    """Whether a request is allowed: never on an explicit Deny; within the
    resource's account by the (allow-all) identity policy; across accounts only
    by an Allow of the resource policy. A service needs that Allow too."""
    decision = evaluate(policy, who, action, resource)
    if decision == DENY:
        return False
    if same_account and who.service is None:
        return True
    return decision == ALLOW
