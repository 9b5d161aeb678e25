"""Direct insertion of Redshift clusters and snapshots (the control routes'
`"kind": "redshift"`), through moto's backends in-process, as world.py does
for RDS: snapshots can carry ages, states, shares and types the API cannot
produce (several automated snapshots per cluster, for instance).
"""

from __future__ import annotations

import types
from datetime import datetime, timedelta
from typing import Any

from moto.core.utils import utcnow
from moto.redshift.models import Cluster, RedshiftBackend, Snapshot, redshift_backends

from . import kms_keys
from .redshift_ext import (
    ACCOUNT_RE,
    MAX_SHARED_ACCOUNTS,
    SNAPSHOT_ARN_RE,
    SUPPORT_ACCOUNT,
    automated_id,
    default_key,
    key_arn,
    mark_creating,
)
from .world import MASTER_PASSWORD, MASTER_USERNAME, REGION_RE, InsertError, _parse_created, _tags, _where

KIND = "redshift"
# ClusterStatus values of the Redshift API reference.
CLUSTER_STATUSES = frozenset({
    "available", "available, prep-for-resize", "available, resize-cleanup", "cancelling-resize", "creating",
    "deleting", "final-snapshot", "hardware-failure", "incompatible-hsm", "incompatible-network",
    "incompatible-parameters", "incompatible-restore", "modifying", "paused", "rebooting", "renaming",
    "resizing", "rotating-keys", "storage-full", "updating-hsm",
})
DEFAULT_NODE_TYPE = "ra3.xlplus"


def is_redshift_spec(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("kind") == KIND


def is_redshift_arn(arn: str) -> bool:
    return arn.split(":")[2:3] == ["redshift"]


def _optional_bool(spec: dict[str, Any], name: str) -> bool | None:
    value = spec.get(name)
    if value is not None and not isinstance(value, bool):
        raise InsertError(f"{name} must be true or false")
    return value


def _key_ref(spec: dict[str, Any]) -> str | None:
    key = spec.get("kms_key_id")
    if key is not None and (not isinstance(key, str) or not key):
        raise InsertError("kms_key_id must be a KMS key id, alias or ARN, or null")
    return key


def _int(spec: dict[str, Any], name: str, default: int, low: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InsertError(f"{name} must be an integer >= {low}")
    return value


def _manual_retention(spec: dict[str, Any]) -> int:
    value = spec.get("manual_snapshot_retention_period", -1)
    if not isinstance(value, int) or isinstance(value, bool) or not (value == -1 or 1 <= value <= 3653):
        raise InsertError("manual_snapshot_retention_period must be -1 or an integer between 1 and 3653")
    return value


# --- clusters -------------------------------------------------------------------

def _cluster_encryption(spec: dict[str, Any], account: str, region: str) -> tuple[bool, str | None]:
    """(encrypted, key ARN): a named key (any key the region knows, the
    aws/redshift key included) encrypts; encrypted without a key means the
    aws/redshift key."""
    encrypted, key = _optional_bool(spec, "encrypted"), _key_ref(spec)
    if key is None:
        return (True, default_key(account, region)) if encrypted else (False, None)
    if encrypted is False:
        raise InsertError("a cluster with a kms_key_id is encrypted: drop kms_key_id or encrypted=false")
    found = kms_keys.find_key(key, account, region)
    if found is None or found.arn.split(":")[3:5] != [region, account]:
        raise InsertError(f"kms_key_id {key} is not a key of {account}/{region}")
    return True, found.arn


def create_cluster(spec: dict[str, Any]) -> str:
    """A real (registered) Redshift cluster; returns its ARN. Fields: account,
    region, id, encrypted, kms_key_id, status, tags, node_type,
    number_of_nodes, manual_snapshot_retention_period, automated_snapshot."""
    if not isinstance(spec, dict):
        raise InsertError("the cluster must be a JSON object")
    account, region = _where(spec)
    ident = spec.get("id")
    if not isinstance(ident, str) or not ident:
        raise InsertError("id is required")
    status = spec.get("status", "available")
    if status not in CLUSTER_STATUSES:
        raise InsertError(f"status must be a Redshift cluster status such as available or paused, not {status!r}")
    node_type = spec.get("node_type", DEFAULT_NODE_TYPE)
    if not isinstance(node_type, str) or not node_type:
        raise InsertError("node_type must be a node type such as ra3.xlplus")
    nodes = _int(spec, "number_of_nodes", 1, 1)
    retention = _manual_retention(spec)
    automated = _optional_bool(spec, "automated_snapshot")
    encrypted, key = _cluster_encryption(spec, account, region)
    tags = _tags(spec)
    backend: RedshiftBackend = redshift_backends[account][region]
    if ident in backend.clusters:
        raise InsertError(f"Redshift cluster {ident} already exists in {account}/{region}")
    before = set(backend.snapshots)
    cluster = backend.create_cluster(**_cluster_kwargs(ident, node_type, nodes, encrypted, key, region, tags))
    cluster.status = status
    cluster.manual_snapshot_retention_period = retention
    if automated is False:  # moto makes one automated snapshot with every cluster, as AWS would soon
        for new in set(backend.snapshots) - before:
            del backend.snapshots[new]
    return cluster.arn


def _cluster_kwargs(ident: str, node_type: str, nodes: int, encrypted: bool, key: str | None,
                    region: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "cluster_identifier": ident, "node_type": node_type, "master_username": MASTER_USERNAME,
        "master_user_password": MASTER_PASSWORD, "db_name": "dev",
        "cluster_type": "multi-node" if nodes > 1 else "single-node", "cluster_security_groups": [],
        "vpc_security_group_ids": [], "cluster_subnet_group_name": None, "availability_zone": None,
        "preferred_maintenance_window": None, "cluster_parameter_group_name": None,
        "automated_snapshot_retention_period": None, "port": None, "cluster_version": None,
        "allow_version_upgrade": True, "number_of_nodes": nodes, "publicly_accessible": False,
        "encrypted": encrypted, "region_name": region, "tags": tags, "kms_key_id": key,
    }


# --- snapshots ------------------------------------------------------------------

def _stand_in(cluster_id: str, region: str) -> Any:
    """What a snapshot copies from its cluster, for a cluster that does not
    exist (deleted, or never made): registered nowhere."""
    return types.SimpleNamespace(
        cluster_identifier=cluster_id, port=5439, availability_zone=f"{region}a",
        master_username=MASTER_USERNAME, master_user_password=MASTER_PASSWORD, cluster_version="1.0",
        node_type=DEFAULT_NODE_TYPE, number_of_nodes=1, db_name="dev", enhanced_vpc_routing=False,
        encrypted=False, kms_key_id=None,
    )


def _created(spec: dict[str, Any]) -> datetime:
    if "created" in spec and "age_days" in spec:
        raise InsertError("give created or age_days, not both")
    age = spec.get("age_days")
    if age is None:
        return _parse_created(spec.get("created"))
    if not isinstance(age, (int, float)) or isinstance(age, bool) or age < 0:
        raise InsertError("age_days must be a number >= 0")
    return utcnow() - timedelta(days=age)


def _snapshot_id(spec: dict[str, Any], snapshot_type: str, cluster_id: str, created: datetime) -> str:
    ident = spec.get("id")
    if snapshot_type == "automated":
        if ident is None:
            return automated_id(cluster_id, created)
        if not isinstance(ident, str) or not ident.startswith("rs:"):
            raise InsertError('an automated snapshot id starts with "rs:" (leave id out to get rs:<cluster>-<time>)')
        return ident
    if not isinstance(ident, str) or not ident:
        raise InsertError("id is required")
    if ident.startswith("rs:"):
        raise InsertError('"rs:" ids are for automated snapshots')
    return ident


def _snapshot_encryption(spec: dict[str, Any], cluster: Any, account: str, region: str) -> tuple[bool, str | None]:
    """kms_key_id names the key (null: unencrypted); absent, encrypted=true
    means the cluster's key (the aws/redshift key for a cluster without one);
    both absent: as the cluster."""
    encrypted = _optional_bool(spec, "encrypted")
    if "kms_key_id" in spec:
        key = _key_ref(spec)
        if (key is None and encrypted) or (key is not None and encrypted is False):
            raise InsertError("kms_key_id and encrypted disagree")
        return (key is not None), (key_arn(key, account, region) if key else None)
    if encrypted is None:
        encrypted = bool(cluster.encrypted)
    if not encrypted:
        return False, None
    return True, (cluster.kms_key_id if cluster.encrypted else default_key(account, region))


def _shared_with(spec: dict[str, Any], account: str, snapshot_type: str) -> list[str]:
    shared = spec.get("shared_with") or []
    if not isinstance(shared, list) or not all(
        isinstance(s, str) and (ACCOUNT_RE.match(s) or s == SUPPORT_ACCOUNT) and s != account for s in shared
    ):
        raise InsertError("shared_with must be a list of other accounts' 12-digit ids")
    shared = list(dict.fromkeys(shared))
    if len(shared) > MAX_SHARED_ACCOUNTS:
        raise InsertError(f"a snapshot can be shared with at most {MAX_SHARED_ACCOUNTS} accounts")
    if shared and snapshot_type != "manual":
        raise InsertError("only manual snapshots can be shared")
    return shared


def _status(spec: dict[str, Any]) -> tuple[str, int | None]:
    status = spec.get("status", "available")
    if status not in ("available", "creating"):
        raise InsertError('status must be "available" or "creating"')
    reads = spec.get("creating_reads")
    if reads is not None and (not isinstance(reads, int) or isinstance(reads, bool) or reads < 0):
        raise InsertError("creating_reads must be an integer >= 0")
    return status, reads


def _source_region(spec: dict[str, Any], region: str) -> str | None:
    source = spec.get("source_region")
    if source is not None and (not isinstance(source, str) or not REGION_RE.match(source) or source == region):
        raise InsertError("source_region must be another region's name")
    return source


def insert_snapshot(spec: dict[str, Any]) -> str:
    """A Redshift snapshot put straight into an account's region (README.md
    lists the fields). Its cluster need not exist. Returns the snapshot ARN."""
    account, region = _where(spec)
    snapshot_type = spec.get("snapshot_type", "manual")
    if snapshot_type not in ("manual", "automated"):
        raise InsertError('snapshot_type must be "manual" or "automated"')
    cluster_id = spec.get("cluster", spec.get("resource_id"))
    if not isinstance(cluster_id, str) or not cluster_id:
        raise InsertError("cluster is required (the cluster the snapshot is of)")
    created = _created(spec)
    ident = _snapshot_id(spec, snapshot_type, cluster_id, created)
    status, reads = _status(spec)
    shared = _shared_with(spec, account, snapshot_type)
    retention = _manual_retention(spec) if snapshot_type == "manual" else None
    if snapshot_type == "automated" and "manual_snapshot_retention_period" in spec:
        raise InsertError("manual_snapshot_retention_period is for manual snapshots")
    source_region = _source_region(spec, region)
    tags = _tags(spec)
    backend: RedshiftBackend = redshift_backends[account][region]
    if ident in backend.snapshots:
        raise InsertError(f"Redshift snapshot {ident} already exists in {account}/{region}")
    cluster: Cluster | Any = backend.clusters.get(cluster_id) or _stand_in(cluster_id, region)
    encrypted, key = _snapshot_encryption(spec, cluster, account, region)
    snapshot = Snapshot(cluster, ident, account, region, tags, snapshot_type=snapshot_type)
    snapshot.create_time = snapshot.snapshot_retention_start_time = created
    snapshot.encrypted, snapshot.kms_key_id = encrypted, key
    snapshot.restore_accounts = shared
    snapshot.manual_snapshot_retention_period = retention
    snapshot.source_region = source_region
    if status == "creating":
        mark_creating(snapshot, reads)
    backend.snapshots[ident] = snapshot
    return snapshot.arn


def remove_snapshots(arns: list[str]) -> None:
    """Undo insertions (a bulk insert that failed part-way leaves nothing)."""
    for arn in arns:
        match = SNAPSHOT_ARN_RE.match(arn)
        if match is not None:
            region, account, _, ident = match.groups()
            redshift_backends[account][region].snapshots.pop(ident, None)
