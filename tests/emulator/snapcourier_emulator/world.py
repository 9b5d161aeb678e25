"""The seeded world, and direct insertion of clusters and snapshots.

Everything is made through moto's backends in-process: no HTTP round trips,
so seeding costs milliseconds, and directly inserted snapshots can carry what
the API cannot produce (an age, a state, sharing without an owner cluster).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot, rds_backends
from moto.rds.utils import split_arn

from . import ACCOUNTS, DESTINATION_ACCOUNT, REGIONS, SOURCE_ACCOUNT, kms_keys
from .rds_ext import CLUSTER, INSTANCE, mark_creating

IAM_USER = "snapcourier"
# Lets the seeded users work when a test turns on moto's IAM enforcement.
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# Required by moto's models, meaningless to snapshot copies.
MASTER_USERNAME = "snapcourier"
MASTER_PASSWORD = "snapcourier-password"


class InsertError(ValueError):
    """A direct insertion that cannot be done; nothing was changed."""


@dataclass
class Credentials:
    account_id: str
    access_key_id: str
    secret_access_key: str


def create_credentials(account: str) -> Credentials:
    """An IAM user with an access key in the account. moto maps requests
    signed with that key to the account."""
    iam = iam_backends[account]["aws"]
    iam.create_user(region_name="us-east-1", user_name=IAM_USER)
    iam.put_user_policy(IAM_USER, "snapcourier-admin", ADMIN_POLICY)
    key = iam.create_access_key(IAM_USER)
    return Credentials(account, key.access_key_id, key.secret_access_key)


def seed(kind: str) -> dict[str, Any]:
    """Accounts, keys and (for "demo") the demo databases and foreign
    snapshots. Returns the parts of the state file that describe them."""
    credentials = {role: create_credentials(account) for role, account in ACCOUNTS.items()}
    cmks: dict[str, dict[str, str]] = {}
    default_keys: dict[str, dict[str, str]] = {}
    redshift_keys: dict[str, dict[str, str]] = {}
    for account in ACCOUNTS.values():
        for region in REGIONS:
            cmks.setdefault(account, {})[region] = kms_keys.ensure_cmk(account, region)
            default_keys.setdefault(account, {})[region] = kms_keys.ensure_default_rds_key(account, region)
            redshift_keys.setdefault(account, {})[region] = kms_keys.ensure_default_redshift_key(account, region)
    from . import elasticache_world  # imports this module's helpers
    # The ElastiCache export and vault buckets, as the stacks create them (like the keys).
    elasticache_world.seed_buckets()
    if kind == "demo":
        _seed_demo(cmks)
    return {
        "accounts": {role: vars(c) for role, c in credentials.items()},
        "regions": list(REGIONS),
        "kms_keys": cmks,
        "default_rds_keys": default_keys,
        "default_redshift_keys": redshift_keys,
    }


def _seed_demo(cmks: dict[str, dict[str, str]]) -> None:
    source_cmk = cmks[SOURCE_ACCOUNT]["us-east-1"]
    for ident, engine, key in [
        ("orders-db", "aurora-postgresql", source_cmk),
        ("billing-db", "aurora-mysql", source_cmk),
        ("analytics-db", "aurora-postgresql", None),
        ("scratch-tmp", "aurora-mysql", None),
    ]:
        create_cluster({"account": SOURCE_ACCOUNT, "region": "us-east-1", "id": ident,
                        "engine": engine, "kms_key_id": key})
    # Snapshots snapcourier does not own and must never touch. Old enough that
    # any retention rule would pick them if ownership were not checked.
    now = utcnow()
    insert_snapshot({"account": SOURCE_ACCOUNT, "region": "us-east-1", "kind": "cluster",
                     "id": "orders-db-before-migration", "resource_id": "orders-db",
                     "created": now - timedelta(days=40)})
    insert_snapshot({"account": SOURCE_ACCOUNT, "region": "us-east-1", "kind": "cluster",
                     "id": "billing-db-other-team", "resource_id": "billing-db",
                     "created": now - timedelta(days=10),
                     "tags": [{"Key": "snapcourier:namespace", "Value": "otherteam"}]})
    insert_snapshot({"account": DESTINATION_ACCOUNT, "region": "eu-west-1", "kind": "cluster",
                     "id": "dest-unowned-keep", "resource_id": "legacy-db",
                     "created": now - timedelta(days=60),
                     "kms_key_id": cmks[DESTINATION_ACCOUNT]["eu-west-1"]})
    _seed_demo_instances(source_cmk)
    from . import redshift_world  # imports this module's helpers
    # Redshift: one KMS-encrypted and one unencrypted warehouse, and one not covered.
    for ident, key in [("warehouse-main", source_cmk), ("warehouse-raw", None), ("scratch-dw", None)]:
        redshift_world.create_cluster({"account": SOURCE_ACCOUNT, "region": "us-east-1", "id": ident,
                                       "encrypted": key is not None, "kms_key_id": key})
    from . import elasticache_world  # imports this module's helpers
    elasticache_world.seed_demo()


def _option_group(account: str, region: str, name: str) -> None:
    rds_backends[account][region].create_option_group({
        "option_group_name": name, "engine_name": "mysql", "major_engine_version": "8.0",
        "option_group_description": "snapcourier demo",
    })


def _seed_demo_instances(source_cmk: str) -> None:
    """RDS DB instances: a MySQL one with a CMK and a custom option group (mapped to
    app-opts-eu in the destination's eu-west-1), an unencrypted PostgreSQL one, a
    read replica (skipped by snapcourier) and one outside the demo's patterns."""
    _option_group(SOURCE_ACCOUNT, "us-east-1", "app-opts")
    _option_group(DESTINATION_ACCOUNT, "eu-west-1", "app-opts-eu")
    backend = rds_backends[SOURCE_ACCOUNT]["us-east-1"]
    for ident, engine, version, key, group in [
        ("orders-mysql", "mysql", "8.0.36", source_cmk, "app-opts"),
        ("billing-pg", "postgres", "16.3", None, None),
        ("inventory-pg", "postgres", "16.3", None, None),
    ]:
        backend.create_db_instance({
            "db_instance_identifier": ident, "engine": engine, "engine_version": version,
            "db_instance_class": "db.t3.micro", "allocated_storage": 20,
            "master_username": MASTER_USERNAME, "master_user_password": MASTER_PASSWORD,
            "storage_encrypted": key is not None, "kms_key_id": key,
            "option_group_name": group, "tags": [],
        })
    backend.create_db_instance_read_replica({
        "db_instance_identifier": "orders-replica", "source_db_instance_identifier": "orders-mysql",
    })


def _where(spec: dict[str, Any]) -> tuple[str, str]:
    account, region = spec.get("account"), spec.get("region")
    if not isinstance(account, str) or not ACCOUNT_RE.match(account):
        raise InsertError("account must be a 12-digit account id")
    if not isinstance(region, str) or not REGION_RE.match(region):
        raise InsertError("region must be an AWS region name such as us-east-1")
    return account, region


def _tags(spec: dict[str, Any]) -> list[dict[str, str]]:
    tags = spec.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value", ""), str)
        for t in tags
    ):
        raise InsertError('tags must be a list of {"Key": str, "Value": str}')
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]


def create_cluster(spec: dict[str, Any]) -> str:
    """A real (registered) Aurora cluster; kms_key_id may be any key the
    region knows, the aws/rds key included, which CreateDBCluster over the
    SDK would also accept. Returns the cluster ARN."""
    account, region = _where(spec)
    ident = spec.get("id")
    if not isinstance(ident, str) or not ident:
        raise InsertError("id is required")
    if not isinstance(spec.get("status", "available"), str):
        raise InsertError("status must be a string such as available or stopped")
    backend = rds_backends[account][region]
    if ident in backend.clusters:
        raise InsertError(f"cluster {ident} already exists in {account}/{region}")
    key = spec.get("kms_key_id")
    cluster = backend.create_db_cluster({
        "db_cluster_identifier": ident,
        "engine": spec.get("engine", "aurora-postgresql"),
        "master_username": MASTER_USERNAME,
        "master_user_password": MASTER_PASSWORD,
        "storage_encrypted": key is not None,
        "kms_key_id": key,
        "tags": _tags(spec),
    })
    # Stock moto reports a new cluster as "creating" to the first describe; a seeded world
    # starts with its databases up, unless the spec asks otherwise (to test skipping).
    cluster.status = spec.get("status", "available")
    return cluster.arn


def _parse_created(value: Any) -> datetime:
    """moto keeps naive UTC datetimes."""
    if value is None:
        return utcnow()
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InsertError("created must be an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise InsertError(f"created: {err}") from None
    if parsed.tzinfo is None:
        raise InsertError("created must carry a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def _snapshot_source(kind: Any, backend: Any, resource_id: str, engine: str | None) -> Any:
    """The cluster or instance a snapshot is of: the real one when it exists,
    else a stand-in registered nowhere (so no DescribeDBClusters shows it)."""
    if kind is CLUSTER:
        return backend.clusters.get(resource_id) or DBCluster(
            backend, db_cluster_identifier=resource_id, engine=engine or "aurora-postgresql",
            master_username=MASTER_USERNAME, master_user_password=MASTER_PASSWORD,
        )
    return backend.databases.get(resource_id) or DBInstance(
        backend, db_instance_identifier=resource_id, db_instance_class="db.t3.medium",
        engine=engine or "postgres", master_username=MASTER_USERNAME,
        # naming a security group keeps moto from building a default VPC
        vpc_security_group_ids=["sg-snapcourier"],
    )


def insert_snapshot(spec: dict[str, Any]) -> str:
    """A snapshot put straight into an account's region (see README.md for
    the fields). The owning cluster or instance need not exist. Returns the
    snapshot ARN."""
    if not isinstance(spec, dict):
        raise InsertError("each snapshot must be a JSON object")
    account, region = _where(spec)
    kind = {"cluster": CLUSTER, "instance": INSTANCE}.get(spec.get("kind", "cluster"))
    if kind is None:
        raise InsertError('kind must be "cluster", "instance", "redshift" or "elasticache"')
    ident = spec.get("id")
    if not isinstance(ident, str) or not ident:
        raise InsertError("id is required")
    status = spec.get("status", "available")
    if status not in ("available", "creating", "failed"):
        raise InsertError('status must be "available", "creating" or "failed"')
    reads = spec.get("creating_reads")
    if reads is not None and (not isinstance(reads, int) or reads < 0):
        raise InsertError("creating_reads must be an integer >= 0")
    snapshot_type = spec.get("snapshot_type", "manual")
    if snapshot_type not in ("manual", "automated"):
        raise InsertError('snapshot_type must be "manual" or "automated"')
    shared_with = spec.get("shared_with") or []
    if not isinstance(shared_with, list) or not all(
        s == "all" or (isinstance(s, str) and ACCOUNT_RE.match(s)) for s in shared_with
    ):
        raise InsertError('shared_with must be a list of account ids (or "all")')
    key = spec.get("kms_key_id")
    if key is not None and not isinstance(key, str):
        raise InsertError("kms_key_id must be a key ARN or null")
    created = _parse_created(spec.get("created"))
    tags = _tags(spec)

    backend = rds_backends[account][region]
    store = kind.store(backend)
    if ident in store:
        raise InsertError(f"{kind.noun} {ident} already exists in {account}/{region}")
    source = _snapshot_source(kind, backend, spec.get("resource_id") or ident, spec.get("engine"))
    if "kms_key_id" not in spec:  # absent: as a snapshot of the source would be
        key = source.kms_key_id if source.storage_encrypted else None
    encrypted = key is not None
    if kind is CLUSTER:
        snapshot = DBClusterSnapshot(backend, source, ident, snapshot_type, tags)
        # Copies take their key from the snapshot's own copy of the cluster.
        snapshot.cluster.kms_key_id, snapshot.cluster.storage_encrypted = key, encrypted
    else:
        snapshot = DBSnapshot(backend, source, ident, snapshot_type, tags, created)
        snapshot.database.kms_key_id, snapshot.database.storage_encrypted = key, encrypted
    snapshot.kms_key_id, snapshot.storage_encrypted, snapshot.encrypted = key, encrypted, encrypted
    snapshot.tags = tags
    snapshot.created = created
    snapshot.attributes["restore"] = list(dict.fromkeys(shared_with))
    if status == "creating":
        mark_creating(snapshot, reads)
    elif status == "failed":
        # A snapshot AWS could not complete (it stays listed, `failed`, until deleted).
        snapshot.status = "failed"
    store[ident] = snapshot
    return snapshot.arn


def remove_snapshots(arns: list[str]) -> None:
    """Undo insertions: a bulk insert that failed part-way leaves nothing."""
    for arn in arns:
        region, account, arn_type, name = split_arn(arn)
        kind = CLUSTER if arn_type == CLUSTER.arn_type else INSTANCE
        kind.store(rds_backends[account][region]).pop(name, None)
