"""Direct creation of ElastiCache replication groups and serverless caches (the
control route's `"kind": "elasticache"`), direct insertion of their snapshots
(POST /snapcourier/snapshots with that kind) and the demo seed's caches, through
moto's backends in-process, as world.py does for RDS."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

from moto.elasticache.models import Snapshot, elasticache_backends
from moto.kms.models import kms_backends

from . import DESTINATION_ACCOUNT, REGIONS, SOURCE_ACCOUNT, kms_keys, s3_ext
from .elasticache_ext import (DEFAULT_KEYS_PER_SHARD, SERVICE_PRINCIPALS, Phase, ServerlessCache, ServerlessSnapshot,
                              _node_snapshots, _tag, _untag, create_serverless_cache, default_data, group_data,
                              serverless_caches, serverless_snapshots)
from .world import InsertError, _parse_created, _tags, _where

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


def _allow_service_decrypt(key_arn: str, region: str) -> None:
    """The vault key's statement for ElastiCache (the CDK's, less kms:ViaService, which
    the emulator's policy evaluation does not know)."""
    key = kms_keys.find_key(key_arn, DESTINATION_ACCOUNT, region)
    if key is None:
        return
    document = json.loads(key.policy)
    statement = {**_allow({"Service": SERVICE_PRINCIPALS[0].format(region=region)}, ["kms:Decrypt", "kms:DescribeKey"],
                          "*"), "Condition": {"StringEquals": {"aws:SourceAccount": DESTINATION_ACCOUNT}}}
    if statement not in document["Statement"]:
        document["Statement"].append(statement)
        key.policy = json.dumps(document)


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
        # ElastiCache of this account may read the namespace's objects (a cache is seeded from
        # them: restore drills, runbook D), and decrypt them with the vault key.
        seeding = {**_allow({"Service": SERVICE_PRINCIPALS[0].format(region=vault_region)}, ["s3:GetObject"],
                            f"arn:aws:s3:::{name}/sc-{namespace}-*"),
                   "Condition": {"StringEquals": {"aws:SourceAccount": DESTINATION_ACCOUNT}}}
        vaults.put_bucket_policy(name, json.dumps({"Version": "2012-10-17", "Statement": [seeding]}).encode())
        key = kms_keys.ensure_cmk(DESTINATION_ACCOUNT, vault_region)
        _allow_service_decrypt(key, vault_region)
        vaults.put_bucket_encryption(name, {"Rule": {"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}})
    return export_key


# --- inserted snapshots (POST /snapcourier/snapshots with "kind": "elasticache") -------------

SNAPSHOT_FIELDS = frozenset({"kind", "account", "region", "id", "resource_id", "serverless", "created", "status",
                             "creating_reads", "shards", "tags", "kms_key_id", "engine"})
SNAPSHOT_ARN_RE = re.compile(r"^arn:aws:elasticache:([^:]+):(\d{12}):(snapshot|serverlesscachesnapshot):(.+)$")
SLOTS = 16384


def is_elasticache_arn(arn: str) -> bool:
    return SNAPSHOT_ARN_RE.match(arn) is not None


def _snapshot_status(spec: dict[str, Any]) -> tuple[str, int | None]:
    status = spec.get("status", "available")
    if status not in ("available", "creating", "failed"):
        raise InsertError('status must be "available", "creating" or "failed"')
    reads = spec.get("creating_reads")
    if reads is not None and (not isinstance(reads, int) or isinstance(reads, bool) or reads < 0):
        raise InsertError("creating_reads must be an integer >= 0")
    if reads is not None and status != "creating":
        raise InsertError('creating_reads is for status "creating"')
    return status, reads


def _snapshot_key(spec: dict[str, Any], account: str, region: str) -> str | None:
    key_ref = spec.get("kms_key_id")
    if key_ref is None:
        return None
    if not isinstance(key_ref, str) or not key_ref:
        raise InsertError("kms_key_id must be a KMS key id, alias or ARN, or null")
    key = kms_keys.find_key(key_ref, account, region)
    if key is None:
        raise InsertError(f"kms_key_id {key_ref} is not a key of {account}/{region}")
    return key.arn


def _set_status(item: Any, status: str, reads: int | None, attr: str) -> None:
    """available, failed, or creating through the extension's phase: `reads`
    describes that include it (None: until further notice), and while stuck."""
    if status == "creating":
        item.sc_phase = Phase("creating", reads)
    setattr(item, attr, status)


def insert_snapshot(spec: Any) -> str:
    """An ElastiCache manual snapshot put straight into an account's region
    (README.md lists the fields): of a replication group, or with "serverless":
    true of a serverless cache; neither need exist. Returns the snapshot ARN."""
    if not isinstance(spec, dict):
        raise InsertError("each snapshot must be a JSON object")
    unknown = sorted(set(spec) - SNAPSHOT_FIELDS)
    if unknown:
        raise InsertError(f"unknown fields for an elasticache snapshot: {unknown}")
    account, region = _where(spec)
    name = _str(spec, "id", None)
    if name is None:
        raise InsertError("id is required (the snapshot name)")
    name = name.lower()  # "This value is stored as a lowercase string"
    resource_id = _str(spec, "resource_id", None)
    if resource_id is None:
        raise InsertError("resource_id is required (the replication group or serverless cache)")
    engine = _str(spec, "engine", None)
    if engine is not None and engine not in ENGINES:
        raise InsertError(f"engine must be one of {list(ENGINES)}")
    serverless = _bool(spec, "serverless")
    created = _parse_created(spec.get("created"))
    status, reads = _snapshot_status(spec)
    tags = _tags(spec)
    key = _snapshot_key(spec, account, region)
    backend = elasticache_backends[account][region]
    if serverless:
        if "shards" in spec and (spec["shards"] != 1 or isinstance(spec["shards"], bool)):
            raise InsertError("shards must be 1 for a serverless cache snapshot (one shard of data)")
        return _insert_serverless_snapshot(backend, account, region, name, resource_id, engine, created, status,
                                           reads, tags, key, "kms_key_id" in spec)
    shards = _int(spec, "shards", 0, 1, 500) if "shards" in spec else None
    if name in backend.snapshots:
        raise InsertError(f"ElastiCache snapshot {name} already exists in {account}/{region}")
    group = backend.replication_groups.get(resource_id)
    if group is not None and (shards is None or shards == len(group.node_groups)):
        shape, data = group, list(group_data(group))
    else:
        shape = _stand_in_group(resource_id, shards or 1, created)
        data = default_data(account, region, resource_id, shards or 1)
    snapshot = Snapshot(
        account_id=account, region_name=region,
        automatic_failover=getattr(group, "automatic_failover", None),
        auto_minor_version_upgrade=getattr(group, "auto_minor_version_upgrade", None),
        cache_cluster_create_time=shape.replication_group_create_time, cache_cluster_id=None,
        cache_node_type=getattr(group, "cache_node_type", None) or DEFAULT_NODE_TYPE,
        cache_parameter_group_name=getattr(group, "cache_parameter_group_name", None),
        cache_subnet_group_name=getattr(group, "cache_subnet_group_name", None),
        engine=engine or getattr(group, "engine", None) or "valkey", engine_version=None, kms_key_id=None,
        num_cache_nodes=None, num_node_groups=len(shape.node_groups), port=getattr(group, "port", None) or 6379,
        preferred_availability_zone=None, preferred_maintenance_window=None, preferred_outpost_arn=None,
        replication_group_description=getattr(group, "description", None) or f"{resource_id} (snapcourier world)",
        replication_group_id=resource_id, snapshot_name=name, snapshot_retention_limit=None,
        snapshot_source="manual", snapshot_status="available", snapshot_window=None, topic_arn=None, tags=None,
    )
    snapshot.sc_data = data
    snapshot.sc_shard_ids = [ng["node_group_id"] for ng in shape.node_groups]
    snapshot.node_snapshots = _node_snapshots(shape, data, created)
    for node in snapshot.node_snapshots:  # an old snapshot of a group made since: not after the snapshot
        node["CacheNodeCreateTime"] = min(node["CacheNodeCreateTime"], created)
    snapshot.cache_cluster_create_time = min(snapshot.cache_cluster_create_time, created)
    snapshot.engine_version = getattr(group, "engine_version", None) or (
        "8.0" if snapshot.engine == "valkey" else "7.1")
    snapshot.kms_key_id = key if "kms_key_id" in spec else (getattr(group, "kms_key_id", None) or None)
    if not shape.cluster_enabled:  # cluster mode disabled: the node it was taken from
        snapshot.cache_cluster_id = snapshot.node_snapshots[0]["CacheClusterId"]
    snapshot.sc_phase = None
    _set_status(snapshot, status, reads, "snapshot_status")
    backend.snapshots[name] = snapshot
    _tag(backend, snapshot.arn, tags)
    return snapshot.arn


def _stand_in_group(ident: str, shards: int, created: Any) -> Any:
    """The shape of a replication group that is not there: `shards` shards of a
    primary each (cluster mode on when more than one), registered nowhere."""
    cluster_enabled = shards > 1
    node_groups = []
    for n in range(1, shards + 1):
        shard = f"{n:04d}"
        member = f"{ident}-{shard}-001" if cluster_enabled else f"{ident}-001"
        node_group: dict[str, Any] = {"node_group_id": shard, "node_group_members": [{"cache_cluster_id": member}]}
        if cluster_enabled:
            node_group["slots"] = f"{(n - 1) * SLOTS // shards}-{n * SLOTS // shards - 1}"
        node_groups.append(node_group)
    return SimpleNamespace(node_groups=node_groups, cluster_enabled=cluster_enabled,
                           replication_group_create_time=created)


def _insert_serverless_snapshot(backend: Any, account: str, region: str, name: str, cache_name: str,
                                engine: str | None, created: Any, status: str, reads: int | None,
                                tags: list[dict[str, str]], key: str | None, key_given: bool) -> str:
    if name in serverless_snapshots(backend):
        raise InsertError(f"serverless cache snapshot {name} already exists in {account}/{region}")
    cache = serverless_caches(backend).get(cache_name) or ServerlessCache(
        account, region, cache_name, engine or "valkey", None, None, None)
    snapshot = ServerlessSnapshot(cache, name, key, region, account)
    if key_given:  # null: unencrypted even if the cache has a key
        snapshot.kms_key_id = key
    if engine is not None:
        snapshot.serverless_cache_configuration["Engine"] = engine
    snapshot.create_time = created
    _set_status(snapshot, status, reads, "status")
    serverless_snapshots(backend)[name] = snapshot
    _tag(backend, snapshot.arn, tags)
    return snapshot.arn


def remove_snapshots(arns: list[str]) -> None:
    """Undo insertions (a bulk insert that failed part-way leaves nothing)."""
    for arn in arns:
        match = SNAPSHOT_ARN_RE.match(arn)
        if match is None:
            continue
        region, account, kind, name = match.groups()
        backend = elasticache_backends[account][region]
        store = backend.snapshots if kind == "snapshot" else serverless_snapshots(backend)
        store.pop(name, None)
        _untag(backend, arn)
