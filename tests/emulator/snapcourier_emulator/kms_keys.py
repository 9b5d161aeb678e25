"""KMS keys of the world: deterministic ids, and AWS-managed `aws/rds` and
`aws/redshift` keys.

Stock moto gives every key a random id, and creates the key behind a reserved
alias such as `alias/aws/rds` on first use as a *customer* managed key. AWS
reports those keys with KeyManager "AWS", and the product must tell them apart
(a snapshot encrypted with the default key cannot be shared), so both the
project's customer keys and the default RDS keys get fixed ids here.
"""

from __future__ import annotations

from typing import Any

from moto.kms import models as kms_models
from moto.kms.models import Key, KmsBackend, kms_backends

CMK_ALIAS = "alias/snapcourier"
DEFAULT_RDS_ALIAS = "alias/aws/rds"
DEFAULT_REDSHIFT_ALIAS = "alias/aws/redshift"

# n in the key id f"{n:08x}-0000-4000-8000-{account}", per region.
CMK_NUMBER = {"us-east-1": 0x1, "eu-west-1": 0x2}
DEFAULT_RDS_KEY_NUMBER = {"us-east-1": 0x101, "eu-west-1": 0x102}
DEFAULT_REDSHIFT_KEY_NUMBER = {"us-east-1": 0x201, "eu-west-1": 0x202}


def key_id(number: int, account: str) -> str:
    return f"{number:08x}-0000-4000-8000-{account}"


def key_arn(account: str, region: str, kid: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{kid}"


def _create_key(backend: KmsBackend, kid: str, description: str, manager: str) -> Key:
    """moto has no way to choose a key id: create a key, then re-file it."""
    key = backend.create_key(
        policy=None,
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        description=description,
        tags=None,
    )
    del backend.keys[key.id]
    key.id = kid
    key.arn = key_arn(backend.account_id, backend.region_name, kid)
    key.key_manager = manager
    backend.keys[kid] = key
    return key


def ensure_cmk(account: str, region: str) -> str:
    """The project's customer managed key (alias/snapcourier); returns its ARN."""
    backend = kms_backends[account][region]
    kid = key_id(CMK_NUMBER[region], account)
    if kid not in backend.keys:
        _create_key(backend, kid, "snapcourier test key", "CUSTOMER")
        backend.create_alias(kid, CMK_ALIAS)
    return backend.keys[kid].arn


def ensure_default_rds_key(account: str, region: str) -> str:
    """The AWS-managed key behind alias/aws/rds; returns its ARN.

    Deterministic in the world's regions; elsewhere moto's own lazily made key
    (marked AWS-managed by the patch in install())."""
    backend = kms_backends[account][region]
    if region not in DEFAULT_RDS_KEY_NUMBER:
        return backend.keys[backend.get_key_id_from_alias(DEFAULT_RDS_ALIAS)].arn
    kid = key_id(DEFAULT_RDS_KEY_NUMBER[region], account)
    if kid not in backend.keys:
        _create_key(
            backend,
            kid,
            "Default key that protects my RDS database volumes when no other key is defined",
            "AWS",
        )
        backend.create_alias(kid, DEFAULT_RDS_ALIAS)
    return backend.keys[kid].arn


def ensure_default_redshift_key(account: str, region: str) -> str:
    """The AWS-managed key behind alias/aws/redshift, which Amazon Redshift
    uses for an encrypted cluster when no customer managed key is named;
    returns its ARN. Deterministic in the world's regions, as ensure_default_rds_key."""
    backend = kms_backends[account][region]
    if region not in DEFAULT_REDSHIFT_KEY_NUMBER:
        return backend.keys[backend.get_key_id_from_alias(DEFAULT_REDSHIFT_ALIAS)].arn
    kid = key_id(DEFAULT_REDSHIFT_KEY_NUMBER[region], account)
    if kid not in backend.keys:
        _create_key(backend, kid, "Default key that protects my Redshift data when no other key is defined", "AWS")
        backend.create_alias(kid, DEFAULT_REDSHIFT_ALIAS)
    return backend.keys[kid].arn


def find_key(key_ref: str, account: str, region: str) -> Key | None:
    """The key an id, alias or ARN names, looked up in the ARN's own account
    and region when it is an ARN; None when there is no such key."""
    if key_ref.startswith("arn:"):
        parts = key_ref.split(":")
        if len(parts) < 6:
            return None
        region, account = parts[3], parts[4]
    try:
        return kms_backends[account][region].describe_key(key_ref)
    except (KeyError, AttributeError, TypeError):
        # moto's ways of saying "no such key or alias"
        return None


def is_aws_managed(key_ref: str | None, account: str, region: str) -> bool:
    key = find_key(key_ref, account, region) if key_ref else None
    return key is not None and key.key_manager == "AWS"


class _LazyPrivateKey:
    """moto makes an RSA key pair for every KMS key, symmetric ones included,
    at ~55 ms each; this one is made only when a Sign/Verify/GetPublicKey
    call first needs it."""

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._key: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._key is None:
            self._key = _generate_private_key(self._key_spec)
        return getattr(self._key, name)


_generate_private_key = kms_models.generate_private_key


def install() -> None:
    """Keys that moto makes on the fly for reserved aliases (alias/aws/*) are
    AWS-managed, as in AWS; key pairs are made lazily."""
    kms_models.generate_private_key = _LazyPrivateKey
    original = KmsBackend._generate_default_keys

    def generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
        kid = original(self, alias_name)
        if kid is not None:
            self.keys[kid].key_manager = "AWS"
        return kid

    KmsBackend._generate_default_keys = generate_default_keys
