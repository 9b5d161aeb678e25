"""Direct creation of ElastiCache replication groups and serverless caches (the
control route's `"kind": "elasticache"`) and the demo seed's caches, through
moto's backends in-process, as world.py does for RDS."""

from __future__ import annotations

from typing import Any

from moto.elasticache.models import elasticache_backends

import json

from moto.kms.models import kms_backends

from . import DESTINATION_ACCOUNT, REGIONS, SOURCE_ACCOUNT, kms_keys, s3_ext
from .elasticache_ext import DEFAULT_KEYS_PER_SHARD, SERVICE_PRINCIPALS, create_serverless_cache, default_data
from .world import InsertError, _tags, _where

KIND = "elasticache"
ENGINES = ("valkey", "redis")
# ReplicationGroup Status values of the API reference.
GROUP_STATUSES = frozenset({"creating", "available", "modifying", "deleting", "create-failed", "snapshotting"})
DEFAULT_NODE_TYPE = "cache.t4g.micro"


def is_elasticache_spec(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("kind") == KIND


def _int(spec: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InsertError(f"{name} must be an integer from {low} to {high}")
    return value


def _str(spec: dict[str, Any], name: str, default: str | None) -> str | None:
    value = spec.get(name, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise InsertError(f"{name} must be a non-empty string")
    return value


def _bool(spec: dict[str, Any], name: str) -> bool:
    value = spec.get(name, False)
    if not isinstance(value, bool):
        raise InsertError(f"{name} must be true or false")
    return value


def create_cache(spec: Any) -> str:
    """A replication group (or, with "serverless": true, a serverless cache);
    returns its ARN. README.md lists the fields."""
    if not isinstance(spec, dict):
        raise InsertError("the cache must be a JSON object")
    account, region = _where(spec)
    ident = _str(spec, "id", None)
    if ident is None:
        raise InsertError("id is required")
    engine = _str(spec, "engine", "valkey")
    if engine not in ENGINES:
        raise InsertError(f"engine must be one of {list(ENGINES)}")
    keys = _int(spec, "keys_per_shard", DEFAULT_KEYS_PER_SHARD, 0, 100000)
    seed = _str(spec, "seed", None)
    tags = _tags(spec)
    backend = elasticache_backends[account][region]
    if _bool(spec, "serverless"):
        if any(name in spec for name in ("cluster_mode", "shards", "replicas", "node_type", "status")):
            raise InsertError("cluster_mode, shards, replicas, node_type and status are for replication groups")
        try:
            return create_serverless_cache(backend, ident, engine, _str(spec, "engine_version", None),
                                           _str(spec, "kms_key_id", None), None, tags, keys, seed).arn
        except Exception as err:  # moto's or the extension's refusal, as a route error
            raise InsertError(str(getattr(err, "message", err))) from None
    return _create_group(spec, backend, account, region, ident, engine, keys, seed, tags)


def _create_group(spec: dict[str, Any], backend: Any, account: str, region: str, ident: str, engine: str,
                  keys: int, seed: str | None, tags: list[dict[str, str]]) -> str:
    cluster_mode = _bool(spec, "cluster_mode")
    shards = _int(spec, "shards", 3 if cluster_mode else 1, 1, 500)
    if shards > 1 and not cluster_mode:
        raise InsertError("shards > 1 needs cluster_mode: true")
    replicas = _int(spec, "replicas", 1, 0, 5)
    node_type = _str(spec, "node_type", DEFAULT_NODE_TYPE)
    status = spec.get("status", "available")
    if status not in GROUP_STATUSES:
        raise InsertError(f"status must be a ReplicationGroup status such as available, not {status!r}")
    if ident in backend.replication_groups:
        raise InsertError(f"replication group {ident} already exists in {account}/{region}")
    group = backend.create_replication_group(**_group_kwargs(
        ident, engine, _str(spec, "engine_version", None), node_type, cluster_mode, shards, replicas, tags,
    ))
    group.status = status
    group.sc_data = default_data(account, region, ident, len(group.node_groups), keys, seed)
    return group.arn


def _group_kwargs(ident: str, engine: str, version: str | None, node_type: str | None, cluster_mode: bool,
                  shards: int, replicas: int, tags: list[dict[str, str]]) -> dict[str, Any]:
    """moto's create_replication_group arguments (all of them are required)."""
    kwargs: dict[str, Any] = {name: None for name in (
        "global_replication_group_id", "primary_cluster_id", "multi_az_enabled", "engine_version",
        "cache_parameter_group_name", "cache_subnet_group_name", "cache_security_group_names",
        "security_group_ids", "snapshot_arns", "snapshot_name", "preferred_maintenance_window", "port",
        "notification_topic_arn", "auto_minor_version_upgrade", "snapshot_retention_limit", "snapshot_window",
        "auth_token", "transit_encryption_enabled", "at_rest_encryption_enabled", "kms_key_id", "user_group_ids",
        "data_tiering_enabled", "network_type", "ip_discovery", "transit_encryption_mode",
        "serverless_cache_snapshot_name",
    )}
    kwargs.update({
        "replication_group_id": ident, "replication_group_description": f"{ident} (snapcourier world)",
        "automatic_failover_enabled": replicas > 0, "num_cache_clusters": None if cluster_mode else replicas + 1,
        "preferred_cache_cluster_azs": [], "num_node_groups": shards if cluster_mode else 1,
        "replicas_per_node_group": replicas, "node_group_configuration": [], "cache_node_type": node_type,
        "engine": engine, "engine_version": version, "tags": tags, "log_delivery_configurations": [],
        "cluster_mode": "enabled" if cluster_mode else "disabled",
    })
    return kwargs


def seed_demo() -> None:
    """Valkey / Redis OSS caches in the source account's us-east-1."""
    region = "us-east-1"
    for spec in [
        {"id": "sessions-valkey", "engine": "valkey", "replicas": 1,
         "tags": [{"Key": "team", "Value": "web"}]},
        {"id": "carts-valkey", "engine": "valkey", "cluster_mode": True, "shards": 3, "replicas": 1,
         "tags": [{"Key": "team", "Value": "shop"}]},
        {"id": "legacy-redis", "engine": "redis", "engine_version": "7.1", "replicas": 0},
        {"id": "tiny-redis", "engine": "redis", "replicas": 0, "node_type": "cache.t1.micro"},
        {"id": "profiles-serverless", "engine": "valkey", "serverless": True,
         "tags": [{"Key": "team", "Value": "identity"}]},
    ]:
        create_cache({"account": SOURCE_ACCOUNT, "region": region, "kind": KIND, **spec})
    seed_buckets()


# The demo deployment's namespace (examples/snapcourier.yaml) and the number of its
# export key in kms_keys' id scheme.
DEMO_NAMESPACE = "demo"
EXPORT_KEY_NUMBER = 0x301
EXPORT_GRANTS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"]


def export_bucket_name(namespace: str, account: str, region: str) -> str:
    """snapcourier_core::naming::export_bucket."""
    return f"sc-{namespace}-export-{account}-{region}"


def vault_bucket_name(namespace: str, account: str, region: str) -> str:
    """snapcourier_core::naming::vault_bucket."""
    return f"sc-{namespace}-vault-{account}-{region}"


def _allow(principal: dict[str, str], actions: list[str], *resources: str) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": list(resources)}


def seed_buckets(namespace: str = DEMO_NAMESPACE) -> dict[str, str]:
    """What the stacks create for ElastiCache (cdk/lib): in the source account's
    us-east-1 the export bucket, encrypted by default with an export key whose
    policy lets the destination account decrypt, its policy granting the
    ElastiCache service what an export needs and the destination account reads of
    the namespace's objects; in the destination account a vault bucket per region,
    versioned with Object Lock, encrypted with that region's key. Returns the
    export key's ARN."""
    region = "us-east-1"
    kms = kms_backends[SOURCE_ACCOUNT][region]
    kid = kms_keys.key_id(EXPORT_KEY_NUMBER, SOURCE_ACCOUNT)
    if kid not in kms.keys:
        key = kms_keys._create_key(kms, kid, "snapcourier ElastiCache exports", "CUSTOMER")
        key.policy = json.dumps({"Version": "2012-10-17", "Statement": [
            _allow({"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}, ["kms:*"], "*"),
            _allow({"AWS": f"arn:aws:iam::{DESTINATION_ACCOUNT}:root"}, ["kms:Decrypt", "kms:DescribeKey"], "*"),
        ]})
        kms.create_alias(kid, f"alias/snapcourier-{namespace}-exports")
    export_key = kms.keys[kid].arn
    s3 = s3_ext.backend_of(SOURCE_ACCOUNT)
    name = export_bucket_name(namespace, SOURCE_ACCOUNT, region)
    if name not in s3.buckets:
        s3.create_bucket(name, region)
        arn = f"arn:aws:s3:::{name}"
        services = [_allow({"Service": principal.format(region=region)}, EXPORT_GRANTS, arn, f"{arn}/*")
                    for principal in SERVICE_PRINCIPALS[:1]]
        readers = _allow({"AWS": f"arn:aws:iam::{DESTINATION_ACCOUNT}:root"}, ["s3:GetObject"],
                         f"{arn}/sc-{namespace}-*")
        lister = _allow({"AWS": f"arn:aws:iam::{DESTINATION_ACCOUNT}:root"}, ["s3:ListBucket"], arn)
        s3.put_bucket_policy(name, json.dumps({"Version": "2012-10-17",
                                               "Statement": [*services, readers, lister]}).encode())
        s3.put_bucket_encryption(name, {"Rule": {"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": export_key}}})
    vaults = s3_ext.backend_of(DESTINATION_ACCOUNT)
    for vault_region in REGIONS:
        name = vault_bucket_name(namespace, DESTINATION_ACCOUNT, vault_region)
        if name in vaults.buckets:
            continue
        vaults.create_bucket(name, vault_region)
        vaults.put_bucket_versioning(name, "Enabled")
        vaults.put_object_lock_configuration(name, True)
        key = kms_keys.ensure_cmk(DESTINATION_ACCOUNT, vault_region)
        vaults.put_bucket_encryption(name, {"Rule": {"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}})
    return export_key
