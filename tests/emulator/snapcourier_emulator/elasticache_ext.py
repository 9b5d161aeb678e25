"""What moto 5.2.5's ElastiCache lacks for snapcourier, patched in.

By the AWS behaviour each patch adds (README.md, "ElastiCache", gives the sources):

* DescribeReplicationGroups and DescribeSnapshots page with MaxRecords/Marker
  (20..100 and 20..50); DescribeServerlessCaches and
  DescribeServerlessCacheSnapshots (absent from moto) with MaxResults/NextToken;
  tags are not part of any of these responses: ListTagsForResource gives them,
  and answers the resource's NotFound fault for one that does not exist;
* serverless caches (Create/Describe/DeleteServerlessCache) and their snapshots
  (Create/Describe/Delete/ExportServerlessCacheSnapshot);
* CreateSnapshot of a replication group takes the snapshot from a replica where
  the shard has one, records one node snapshot per shard and the data of each
  shard, refuses cache.t1.micro (SnapshotFeatureNotSupportedFault) and a group
  that is not available; names are stored lower-case;
* a `creating` phase for snapshots (control.Config creating_reads and stuck, as
  for RDS and Redshift snapshots) and a `copying`/`exporting` phase for exports;
* CopySnapshot (absent from moto): a copy within ElastiCache, or with
  TargetBucket an export to S3 that writes one `<TargetSnapshotName>-<shard>.rdb`
  object per shard (rdb.py makes the bytes) into the caller's bucket in the
  snapshot's region, after AWS's checks (the bucket exists, is in the region, is
  the caller's, grants the ElastiCache service access in its bucket policy, has
  no object of that key);
* CreateReplicationGroup with SnapshotArns (S3 .rdb objects the ElastiCache
  service and the caller may read, in the group's region) or SnapshotName: the
  group is seeded from them and goes through the restore phase (restore_phase:
  restore_reads, restore_failures, stuck); an object that is not an RDB file
  ends it `create-failed`;
* NumCacheClusters is honoured (moto made one node unless ReplicasPerNodeGroup);
* DeleteReplicationGroup removes the group at once (moto left it `deleting` for
  ever), with FinalSnapshotIdentifier; deletes drop the resource's tags (moto
  kept them for a later resource of the same name).

ElastiCache requests are serialised by the server (control.WORLD_LOCK).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.elasticache.exceptions import ElastiCacheException
from moto.elasticache.models import ElastiCacheBackend, ReplicationGroup, Snapshot
from moto.elasticache.responses import ElastiCacheResponse

from . import bucket_policy, kms_keys, rdb, restore_phase, s3_ext
from .control import CONFIG

DEFAULT_KEYS_PER_SHARD = 16
# Node types AWS cannot snapshot ("Backup and restore ... not supported on cache.t1.micro nodes").
NO_SNAPSHOT_NODE_TYPES = frozenset({"cache.t1.micro"})
CREATE_FAILED = "create-failed"
S3_ARN_RE = re.compile(r"^arn:aws[\w-]*:s3:::([^/]+)/(.+)$")
ARN_RE = re.compile(r"^arn:aws[\w-]*:elasticache:([^:]+):(\d{12}):([a-z]+):(.+)$")
SERVICE_PRINCIPALS = ("{region}.elasticache-snapshot.amazonaws.com", "elasticache.amazonaws.com")
DEFAULT_MAJOR_VERSION = {"valkey": "8", "redis": "7", "memcached": "1.6"}


def fault(code: str, message: str) -> ElastiCacheException:
    """An ElastiCache error with the wire code of the API model."""
    return ElastiCacheException(code, message)


def invalid_parameter(message: str) -> ElastiCacheException:
    return fault("InvalidParameterValue", message)


# --- data ---------------------------------------------------------------------------

def default_data(account: str, region: str, ident: str, shards: int, keys: int = DEFAULT_KEYS_PER_SHARD,
                 seed: str | None = None) -> list[rdb.ShardData]:
    """The data of a new cache: one ShardData per shard, named after the cache."""
    base = seed or f"{account}/{region}/{ident}"
    return [rdb.ShardData(f"{base}#{n}", keys) for n in range(1, shards + 1)]


def group_data(group: ReplicationGroup) -> list[rdb.ShardData]:
    data = getattr(group, "sc_data", None)
    if data is None or len(data) != len(group.node_groups):
        data = default_data(group.arn.split(":")[4], group.arn.split(":")[3], group.replication_group_id,
                            len(group.node_groups))
        group.sc_data = data
    return data


def shard_size(data: rdb.ShardData, shard: int) -> int:
    return len(rdb.body(data, shard))


# --- phases ---------------------------------------------------------------------------

@dataclass
class Phase:
    """A snapshot's `creating` (or export) phase: `reads` more describe
    responses that include it, while its name matches no `stuck` pattern;
    then `done` (if any) runs and the status becomes `available`. `reads`
    None (inserted snapshots only): for ever."""

    busy: str
    reads: int | None
    done: Callable[[], None] | None = None


def _status_attr(item: Any) -> str:
    return "snapshot_status" if isinstance(item, Snapshot) else "status"


def _name(item: Any) -> str:
    return item.snapshot_name if isinstance(item, Snapshot) else item.serverless_cache_snapshot_name


def begin(item: Any, busy: str, done: Callable[[], None] | None = None) -> None:
    """Start a phase with the configured creating_reads; with none (and not
    stuck) it ends at once."""
    reads = CONFIG.creating_reads
    if not reads and not CONFIG.is_stuck(_name(item)):
        if done is not None:
            done()
        setattr(item, _status_attr(item), "available")
        return
    item.sc_phase = Phase(busy, reads, done)
    setattr(item, _status_attr(item), busy)


def observe(item: Any) -> None:
    """A describe response is about to include this snapshot."""
    phase: Phase | None = getattr(item, "sc_phase", None)
    if phase is None or phase.reads is None or CONFIG.is_stuck(_name(item)):
        return  # reads None: an inserted snapshot creating until further notice
    if phase.reads:
        phase.reads -= 1
        return
    item.sc_phase = None
    if phase.done is not None:
        phase.done()
    setattr(item, _status_attr(item), "available")


def _require_available(item: Any, code: str, also: tuple[str, ...] = ()) -> None:
    status = getattr(item, _status_attr(item))
    if status != "available" and status not in also:
        raise fault(code, f"Snapshot {_name(item)} is not in the available state (it is {status}).")


# A snapshot AWS could not complete stays listed, `failed`, until it is deleted.
DELETABLE = ("failed",)


# --- paging ------------------------------------------------------------------------

def paginate(items: Iterable[Any], key: Callable[[Any], str], size: Any, marker: str | None,
             default: int, low: int, high: int, size_name: str) -> tuple[list[Any], str | None]:
    """AWS's paging: at most `size` items after the one the opaque marker names."""
    if size is None:
        size = default
    elif not isinstance(size, int) or not low <= size <= high:
        raise invalid_parameter(f"Invalid value {size} for {size_name}. Must be between {low} and {high}")
    ordered = sorted(items, key=key)
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_parameter(f"Invalid marker: {marker}") from None
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:size]
    if len(ordered) <= size:
        return page, None
    return page, base64.urlsafe_b64encode(key(page[-1]).encode()).decode()


# --- serverless caches -------------------------------------------------------------------

class ServerlessCache:
    """A serverless cache as DescribeServerlessCaches shows it."""

    def __init__(self, account: str, region: str, name: str, engine: str, major: str | None,
                 kms_key_id: str | None, description: str | None, keys: int = DEFAULT_KEYS_PER_SHARD,
                 seed: str | None = None) -> None:
        self.serverless_cache_name = name
        self.description = description or ""
        self.create_time = utcnow()
        self.status = "available"
        self.engine = engine
        self.major_engine_version = major or DEFAULT_MAJOR_VERSION.get(engine, "8")
        self.full_engine_version = f"{self.major_engine_version}.0"
        self.kms_key_id = kms_key_id
        self.arn = f"arn:aws:elasticache:{region}:{account}:serverlesscache:{name}"
        self.endpoint = {"Address": f"{name}-abc123.serverless.{region}.cache.amazonaws.com", "Port": 6379}
        self.reader_endpoint = {"Address": self.endpoint["Address"], "Port": 6380}
        self.snapshot_retention_limit = 0
        self.security_group_ids: list[str] = []
        self.subnet_ids: list[str] = []
        self.network_type = "ipv4"
        self.connection_type = "vpc"
        self.sc_data = default_data(account, region, name, 1, keys, seed)


class ServerlessSnapshot:
    """A serverless cache snapshot as DescribeServerlessCacheSnapshots shows it."""

    def __init__(self, cache: ServerlessCache, name: str, kms_key_id: str | None, region: str,
                 account: str) -> None:
        self.serverless_cache_snapshot_name = name
        self.arn = f"arn:aws:elasticache:{region}:{account}:serverlesscachesnapshot:{name}"
        self.kms_key_id = kms_key_id or cache.kms_key_id
        self.snapshot_type = "manual"
        self.status = "available"
        self.create_time = utcnow()
        self.sc_data = list(cache.sc_data)
        self.bytes_used_for_cache = str(sum(shard_size(d, n) for n, d in enumerate(self.sc_data, 1)))
        self.serverless_cache_configuration = {
            "ServerlessCacheName": cache.serverless_cache_name,
            "Engine": cache.engine,
            "MajorEngineVersion": cache.major_engine_version,
        }
        self.sc_phase: Phase | None = None


def serverless_caches(backend: ElastiCacheBackend) -> dict[str, ServerlessCache]:
    return backend.__dict__.setdefault("sc_serverless_caches", {})


def serverless_snapshots(backend: ElastiCacheBackend) -> dict[str, ServerlessSnapshot]:
    return backend.__dict__.setdefault("sc_serverless_snapshots", {})


def _serverless_cache(backend: ElastiCacheBackend, name: str | None) -> ServerlessCache:
    cache = serverless_caches(backend).get(name or "")
    if cache is None:
        raise fault("ServerlessCacheNotFoundFault", f"Serverless cache {name} not found.")
    return cache


def _serverless_snapshot(backend: ElastiCacheBackend, name: str | None) -> ServerlessSnapshot:
    snapshot = serverless_snapshots(backend).get((name or "").lower())
    if snapshot is None:
        raise fault("ServerlessCacheSnapshotNotFoundFault", f"Serverless cache snapshot {name} not found.")
    return snapshot


def _key_arn(backend: ElastiCacheBackend, key_ref: str | None) -> str | None:
    if not key_ref:
        return None
    key = kms_keys.find_key(key_ref, backend.account_id, backend.region_name)
    if key is None:
        raise invalid_parameter(f"KMS key {key_ref} not found in {backend.region_name}.")
    return key.arn


def create_serverless_cache(backend: ElastiCacheBackend, name: str, engine: str, major: str | None,
                            kms_key_id: str | None, description: str | None, tags: list[dict[str, str]],
                            keys: int = DEFAULT_KEYS_PER_SHARD, seed: str | None = None) -> ServerlessCache:
    if not name:
        raise invalid_parameter("ServerlessCacheName is required.")
    if name in serverless_caches(backend):
        raise fault("ServerlessCacheAlreadyExistsFault", f"Serverless cache {name} already exists.")
    if engine not in DEFAULT_MAJOR_VERSION:
        raise invalid_parameter(f"Invalid engine {engine}: valkey, redis or memcached.")
    cache = ServerlessCache(backend.account_id, backend.region_name, name, engine, major,
                            _key_arn(backend, kms_key_id), description, keys, seed)
    serverless_caches(backend)[name] = cache
    _tag(backend, cache.arn, tags)
    return cache


def _tag(backend: ElastiCacheBackend, arn: str, tags: list[dict[str, str]] | None) -> None:
    if tags:
        backend.tagging_service.tag_resource(arn, [{"Key": t["Key"], "Value": t.get("Value") or ""} for t in tags])


def _untag(backend: ElastiCacheBackend, arn: str) -> None:
    backend.tagging_service.delete_all_tags_for_resource(arn)


# --- handlers: describes ---------------------------------------------------------------

def _describe_replication_groups(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    ident = self._get_param("ReplicationGroupId")
    groups = list(backend.replication_groups.values())
    if ident:
        groups = [g for g in groups if g.replication_group_id == ident.lower() or g.replication_group_id == ident]
        if not groups:
            raise fault("ReplicationGroupNotFoundFault", f"Replication group {ident} not found.")
    page, marker = paginate(groups, lambda g: g.replication_group_id, self._get_param("MaxRecords"),
                            self._get_param("Marker"), 100, 20, 100, "MaxRecords")
    for group in page:
        restore_phase.observe(group)
    return ActionResult({"ReplicationGroups": page, "Marker": marker})


def _describe_snapshots(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    name = self._get_param("SnapshotName")
    group_id = self._get_param("ReplicationGroupId")
    cluster_id = self._get_param("CacheClusterId")
    source = self._get_param("SnapshotSource")
    if group_id and cluster_id:
        raise fault("InvalidParameterCombination", "Only one of CacheClusterId or ReplicationGroupId can be provided.")
    snapshots = list(backend.snapshots.values())
    if name:
        snapshots = [s for s in snapshots if s.snapshot_name == name.lower()]
        if not snapshots:
            raise fault("SnapshotNotFoundFault", f"Snapshot {name} not found.")
    if group_id:
        snapshots = [s for s in snapshots if s.replication_group_id == group_id]
    if cluster_id:
        snapshots = [s for s in snapshots if s.cache_cluster_id == cluster_id]
    if source:
        wanted = {"system": "automated", "user": "manual"}.get(source.lower(), source.lower())
        snapshots = [s for s in snapshots if s.snapshot_source == wanted]
    page, marker = paginate(snapshots, lambda s: s.snapshot_name, self._get_param("MaxRecords"),
                            self._get_param("Marker"), 50, 20, 50, "MaxRecords")
    for snapshot in page:
        observe(snapshot)
    return ActionResult({"Snapshots": page, "Marker": marker})


def _describe_serverless_caches(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    name = self._get_param("ServerlessCacheName")
    caches = [_serverless_cache(backend, name)] if name else list(serverless_caches(backend).values())
    page, token = paginate(caches, lambda c: c.serverless_cache_name, self._get_param("MaxResults"),
                           self._get_param("NextToken"), 50, 1, 100, "MaxResults")
    return ActionResult({"ServerlessCaches": page, "NextToken": token})


def _describe_serverless_cache_snapshots(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    name = self._get_param("ServerlessCacheSnapshotName")
    cache_name = self._get_param("ServerlessCacheName")
    snapshot_type = self._get_param("SnapshotType")
    snapshots = [_serverless_snapshot(backend, name)] if name else list(serverless_snapshots(backend).values())
    if cache_name:
        snapshots = [s for s in snapshots if s.serverless_cache_configuration["ServerlessCacheName"] == cache_name]
    if snapshot_type:
        snapshots = [s for s in snapshots if s.snapshot_type == snapshot_type]
    page, token = paginate(snapshots, lambda s: s.serverless_cache_snapshot_name, self._get_param("MaxResults"),
                           self._get_param("NextToken"), 50, 1, 50, "MaxResults")
    for snapshot in page:
        observe(snapshot)
    return ActionResult({"ServerlessCacheSnapshots": page, "NextToken": token})


# --- tags -------------------------------------------------------------------------------

RESOURCE_LOOKUPS: dict[str, tuple[str, Callable[[ElastiCacheBackend, str], Any]]] = {
    "replicationgroup": ("ReplicationGroupNotFoundFault", lambda b, n: b.replication_groups.get(n)),
    "snapshot": ("SnapshotNotFoundFault", lambda b, n: b.snapshots.get(n)),
    "serverlesscache": ("ServerlessCacheNotFoundFault", lambda b, n: serverless_caches(b).get(n)),
    "serverlesscachesnapshot": ("ServerlessCacheSnapshotNotFoundFault", lambda b, n: serverless_snapshots(b).get(n)),
}


def _tagged_resource(self: ElastiCacheResponse) -> str:
    """The ARN a tag call names, checked: the caller's account and region, and
    (for the kinds modelled here) a resource that exists."""
    backend = self.elasticache_backend
    arn = self._get_param("ResourceName") or ""
    match = ARN_RE.match(arn)
    if match is None or (match.group(1), match.group(2)) != (backend.region_name, backend.account_id):
        raise fault("InvalidARN", f"ARN {arn} is invalid.")
    kind, name = match.group(3), match.group(4)
    lookup = RESOURCE_LOOKUPS.get(kind)
    if lookup is not None and lookup[1](backend, name) is None:
        raise fault(lookup[0], f"{kind} {name} not found.")
    return arn


def _list_tags_for_resource(self: ElastiCacheResponse) -> ActionResult:
    arn = _tagged_resource(self)
    tags = self.elasticache_backend.tagging_service.list_tags_for_resource(arn)["Tags"]
    return ActionResult({"TagList": tags})


def _with_checked_arn(stock: Callable[[ElastiCacheResponse], ActionResult]) -> Callable[[ElastiCacheResponse], Any]:
    def handler(self: ElastiCacheResponse) -> ActionResult:
        arn = _tagged_resource(self)
        stock(self)
        return ActionResult({"TagList": self.elasticache_backend.tagging_service.list_tags_for_resource(arn)["Tags"]})

    return handler


# --- snapshots of replication groups -----------------------------------------------------------

def _snapshot_member(group: ReplicationGroup, node_group: dict[str, Any]) -> str:
    """The node a shard's snapshot is taken from: a replica where there is one
    ("ElastiCache takes the backup from a read replica" when one exists)."""
    members = [m["cache_cluster_id"] for m in node_group["node_group_members"]]
    return members[1] if len(members) > 1 else members[0]


def _node_snapshots(group: ReplicationGroup, data: list[rdb.ShardData], taken: Any) -> list[dict[str, Any]]:
    nodes = []
    for number, (node_group, shard) in enumerate(zip(group.node_groups, data), 1):
        member = _snapshot_member(group, node_group)
        configuration: dict[str, Any] = {"NodeGroupId": node_group["node_group_id"],
                                         "ReplicaCount": len(node_group["node_group_members"]) - 1}
        if node_group.get("slots"):
            configuration["Slots"] = node_group["slots"]
        nodes.append({
            "CacheClusterId": member,
            "NodeGroupId": node_group["node_group_id"],
            "CacheNodeId": "0001",
            "NodeGroupConfiguration": configuration,
            "CacheSize": f"{shard_size(shard, number)} bytes",
            "CacheNodeCreateTime": group.replication_group_create_time,
            "SnapshotCreateTime": taken,
        })
    return nodes


def take_snapshot(backend: ElastiCacheBackend, group: ReplicationGroup, name: str,
                  tags: list[dict[str, str]] | None, kms_key_id: str | None = None) -> Snapshot:
    """A manual snapshot of a replication group (checks done by the caller)."""
    snapshot = backend.create_snapshot(snapshot_name=name, replication_group_id=group.replication_group_id,
                                       cache_cluster_id=None, kms_key_id=None, tags=None)
    data = list(group_data(group))
    taken = utcnow()
    snapshot.sc_data = data
    snapshot.sc_shard_ids = [ng["node_group_id"] for ng in group.node_groups]
    snapshot.node_snapshots = _node_snapshots(group, data, taken)
    snapshot.cache_cluster_create_time = group.replication_group_create_time
    snapshot.engine_version = group.engine_version or ("8.0" if group.engine == "valkey" else "7.1")
    snapshot.kms_key_id = _key_arn(backend, kms_key_id) or (group.kms_key_id or None)
    if not group.cluster_enabled:  # cluster mode disabled: the node it was taken from
        snapshot.cache_cluster_id = snapshot.node_snapshots[0]["CacheClusterId"]
    _tag(backend, snapshot.arn, tags)
    return snapshot


def _check_snapshottable(backend: ElastiCacheBackend, group: ReplicationGroup, name: str) -> None:
    if name in backend.snapshots:
        raise fault("SnapshotAlreadyExistsFault", f"Snapshot {name} already exists.")
    if group.cache_node_type in NO_SNAPSHOT_NODE_TYPES:
        raise fault("SnapshotFeatureNotSupportedFault",
                    "You attempted one of the following operations: Creating a snapshot of a Valkey or Redis OSS "
                    f"cache cluster running on a {group.cache_node_type} cache node.")
    if group.status != "available":
        raise fault("InvalidReplicationGroupState",
                    f"Replication group {group.replication_group_id} is not in the available state "
                    f"(it is {group.status}).")


def _create_snapshot(stock: Callable[[ElastiCacheResponse], ActionResult]) -> Callable[[ElastiCacheResponse], Any]:
    def handler(self: ElastiCacheResponse) -> ActionResult:
        backend = self.elasticache_backend
        group_id = self._get_param("ReplicationGroupId")
        name = (self._get_param("SnapshotName") or "").lower()
        if not group_id or self._get_param("CacheClusterId"):
            return stock(self)  # a single cache cluster, or moto's parameter faults
        group = backend.replication_groups.get(group_id)
        if group is None:
            raise fault("ReplicationGroupNotFoundFault", f"Replication group {group_id} not found.")
        _check_snapshottable(backend, group, name)
        snapshot = take_snapshot(backend, group, name, self._get_param("Tags"), self._get_param("KmsKeyId"))
        begin(snapshot, "creating")
        return ActionResult({"Snapshot": _answer(snapshot, "creating")})

    return handler


def _answer(item: Any, status: str) -> Any:
    """The item as the call that started its phase answers it (AWS answers
    `creating` even when the work ends quickly)."""
    view = copy.copy(item)
    setattr(view, _status_attr(view), status)
    return view


def _own_snapshot(backend: ElastiCacheBackend, name: str | None) -> Snapshot:
    snapshot = backend.snapshots.get((name or "").lower())
    if snapshot is None:
        raise fault("SnapshotNotFoundFault", f"Snapshot {name} not found.")
    return snapshot


def _copy_snapshot(self: ElastiCacheResponse) -> ActionResult:
    """CopySnapshot: an export with TargetBucket, else a copy within ElastiCache."""
    backend = self.elasticache_backend
    source = _own_snapshot(backend, self._get_param("SourceSnapshotName"))
    _require_available(source, "InvalidSnapshotState")
    target = (self._get_param("TargetSnapshotName") or "").lower()
    if not target:
        raise invalid_parameter("TargetSnapshotName is required.")
    bucket = self._get_param("TargetBucket")
    if bucket:
        return ActionResult({"Snapshot": _export(backend, source, bucket, target)})
    if target in backend.snapshots:
        raise fault("SnapshotAlreadyExistsFault", f"Snapshot {target} already exists.")
    duplicate = copy.copy(source)
    duplicate.snapshot_name = target
    duplicate.arn = source.arn.rsplit(":", 1)[0] + f":{target}"
    duplicate.snapshot_source = "manual"
    duplicate.kms_key_id = _key_arn(backend, self._get_param("KmsKeyId")) or source.kms_key_id
    duplicate.sc_phase = None
    backend.snapshots[target] = duplicate
    _tag(backend, duplicate.arn, self._get_param("Tags"))
    begin(duplicate, "creating")
    return ActionResult({"Snapshot": _answer(duplicate, "creating")})


def _delete_snapshot(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    snapshot = _own_snapshot(backend, self._get_param("SnapshotName"))
    _require_available(snapshot, "InvalidSnapshotState", DELETABLE)
    del backend.snapshots[snapshot.snapshot_name]
    _untag(backend, snapshot.arn)
    return ActionResult({"Snapshot": _answer(snapshot, "deleting")})


# --- exports -----------------------------------------------------------------------------------

def export_keys(target: str, shard_ids: list[str]) -> list[str]:
    """`<target>-<shard>.rdb` per shard: "ElastiCache adds an instance identifier
    and .rdb ... if you enter my-exported-backup, ElastiCache creates
    my-exported-backup-0001.rdb"."""
    return [f"{target}-{shard}.rdb" for shard in shard_ids]


def _check_export_bucket(backend: ElastiCacheBackend, bucket_name: str, keys: list[str], source_arn: str) -> None:
    """AWS's documented refusals of an export (all InvalidParameterValue)."""
    found = s3_ext.find_bucket(bucket_name)
    if found is None:
        raise invalid_parameter(f"The S3 bucket {bucket_name} does not exist.")
    owner, bucket = found
    if bucket.region_name != backend.region_name:
        raise invalid_parameter(f"The S3 bucket {bucket_name} is outside of the region.")
    if owner != backend.account_id:
        raise invalid_parameter(f"The S3 bucket {bucket_name} is not owned by the authenticated user.")
    if any(CONFIG.denies(backend.account_id, "s3:PutObject", f"{bucket_name}/{key}") for key in keys):
        raise invalid_parameter("The authenticated user does not have sufficient permissions to perform the "
                                "desired activity.")
    for permission, grants in (("READ", [("s3:GetObject", keys[0]), ("s3:ListBucket", None)]),
                               ("WRITE", [("s3:PutObject", key) for key in keys]),
                               ("READ_ACP", [("s3:GetBucketAcl", None)])):
        if not all(service_allowed(backend, owner, bucket, action, key, source_arn) for action, key in grants):
            raise invalid_parameter(f"ElastiCache has not been granted {permission} permissions {bucket_name} "
                                    "on the S3 Bucket.")
    taken = [key for key in keys if bucket.keys.get(key) is not None]
    if taken:
        raise invalid_parameter(f"The S3 bucket {bucket_name} already contains an object with key {taken[0]}.")


def service_allowed(backend: ElastiCacheBackend, owner: str, bucket: Any, action: str, key: str | None,
                    source_arn: str) -> bool:
    """Whether the bucket policy lets the ElastiCache service principal of the
    region (or the global elasticache.amazonaws.com) do `action`."""
    return any(
        s3_ext.allows(bucket_policy.service(name.format(region=backend.region_name), backend.account_id,
                                            source_arn), owner, bucket, action, key)
        for name in SERVICE_PRINCIPALS
    )


def service_may_decrypt(backend: ElastiCacheBackend, obj: Any, region: str, source_arn: str) -> bool:
    """Reading an SSE-KMS object decrypts it: the key's policy must allow the
    ElastiCache service principal kms:Decrypt (an AWS-managed key never does)."""
    if obj.encryption != "aws:kms" or not obj.kms_key_id:
        return True
    key = kms_keys.find_key(obj.kms_key_id, obj.account_id, region)
    if key is None or key.key_manager == "AWS":
        return False
    return any(
        bucket_policy.permits(key.policy, bucket_policy.service(name.format(region=backend.region_name),
                                                                backend.account_id, source_arn),
                              "kms:Decrypt", key.arn, same_account=False)
        for name in SERVICE_PRINCIPALS
    )


def write_objects(account: str, bucket_name: str, keys: list[str], data: list[rdb.ShardData]) -> None:
    """The exported objects, in the bucket owner's S3 (moto's backend), encrypted
    as the bucket's default encryption says, under its default retention."""
    found = s3_ext.find_bucket(bucket_name)
    if found is None:  # deleted while the export ran: AWS's export would fail
        return
    owner, bucket = found
    lock_mode = lock_until = None
    if bucket.has_default_lock:
        lock_mode, lock_until = bucket.default_lock_mode, bucket.default_retention()
    for number, (key, shard) in enumerate(zip(keys, data), 1):
        body = rdb.body(shard, number)
        obj = s3_ext.backend_of(owner).put_object(bucket_name, key, body, lock_mode=lock_mode, lock_until=lock_until)
        obj.checksum_algorithm = "SHA256"
        obj.checksum_value = base64.b64encode(hashlib.sha256(body).digest()).decode()


def _export(backend: ElastiCacheBackend, source: Snapshot, bucket_name: str, target: str) -> Snapshot:
    shard_ids = getattr(source, "sc_shard_ids", None) or ["0001"]
    data = getattr(source, "sc_data", None) or default_data(backend.account_id, backend.region_name,
                                                            source.snapshot_name, len(shard_ids))
    keys = export_keys(target, shard_ids)
    _check_export_bucket(backend, bucket_name, keys, source.arn)
    account = backend.account_id
    begin(source, "copying", lambda: write_objects(account, bucket_name, keys, data))
    return _answer(source, "copying")


def _export_serverless_cache_snapshot(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    snapshot = _serverless_snapshot(backend, self._get_param("ServerlessCacheSnapshotName"))
    _require_available(snapshot, "InvalidServerlessCacheSnapshotStateFault")
    bucket_name = self._get_param("S3BucketName") or ""
    keys = export_keys(snapshot.serverless_cache_snapshot_name, ["0001"])
    _check_export_bucket(backend, bucket_name, keys, snapshot.arn)
    account, data = backend.account_id, snapshot.sc_data
    begin(snapshot, "exporting", lambda: write_objects(account, bucket_name, keys, data))
    return ActionResult({"ServerlessCacheSnapshot": _answer(snapshot, "exporting")})


# --- serverless handlers ---------------------------------------------------------------------

def _create_serverless_cache(self: ElastiCacheResponse) -> ActionResult:
    if self._get_param("SnapshotArnsToRestore"):
        raise invalid_parameter("SnapshotArnsToRestore is not modelled by the snapcourier emulator.")
    cache = create_serverless_cache(
        self.elasticache_backend, self._get_param("ServerlessCacheName") or "", self._get_param("Engine") or "",
        self._get_param("MajorEngineVersion"), self._get_param("KmsKeyId"), self._get_param("Description"),
        self._get_param("Tags") or [],
    )
    return ActionResult({"ServerlessCache": _answer(cache, "creating")})


def _delete_serverless_cache(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    cache = _serverless_cache(backend, self._get_param("ServerlessCacheName"))
    final = self._get_param("FinalSnapshotName")
    if final:
        _new_serverless_snapshot(backend, cache, final.lower(), None, None)
    del serverless_caches(backend)[cache.serverless_cache_name]
    _untag(backend, cache.arn)
    return ActionResult({"ServerlessCache": _answer(cache, "deleting")})


def _new_serverless_snapshot(backend: ElastiCacheBackend, cache: ServerlessCache, name: str,
                             kms_key_id: str | None, tags: list[dict[str, str]] | None) -> ServerlessSnapshot:
    if name in serverless_snapshots(backend):
        raise fault("ServerlessCacheSnapshotAlreadyExistsFault", f"Serverless cache snapshot {name} already exists.")
    if cache.status != "available":
        raise fault("InvalidServerlessCacheStateFault",
                    f"Serverless cache {cache.serverless_cache_name} is not available (it is {cache.status}).")
    snapshot = ServerlessSnapshot(cache, name, _key_arn(backend, kms_key_id), backend.region_name,
                                  backend.account_id)
    serverless_snapshots(backend)[name] = snapshot
    _tag(backend, snapshot.arn, tags)
    begin(snapshot, "creating")
    return snapshot


def _create_serverless_cache_snapshot(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    name = (self._get_param("ServerlessCacheSnapshotName") or "").lower()
    if not name:
        raise invalid_parameter("ServerlessCacheSnapshotName is required.")
    if name in serverless_snapshots(backend):
        raise fault("ServerlessCacheSnapshotAlreadyExistsFault", f"Serverless cache snapshot {name} already exists.")
    cache = _serverless_cache(backend, self._get_param("ServerlessCacheName"))
    snapshot = _new_serverless_snapshot(backend, cache, name, self._get_param("KmsKeyId"), self._get_param("Tags"))
    return ActionResult({"ServerlessCacheSnapshot": _answer(snapshot, "creating")})


def _delete_serverless_cache_snapshot(self: ElastiCacheResponse) -> ActionResult:
    backend = self.elasticache_backend
    snapshot = _serverless_snapshot(backend, self._get_param("ServerlessCacheSnapshotName"))
    _require_available(snapshot, "InvalidServerlessCacheSnapshotStateFault", DELETABLE)
    del serverless_snapshots(backend)[snapshot.serverless_cache_snapshot_name]
    _untag(backend, snapshot.arn)
    return ActionResult({"ServerlessCacheSnapshot": _answer(snapshot, "deleting")})


# --- replication groups: create from S3 or a snapshot, delete ------------------------------------

def _seed_objects(backend: ElastiCacheBackend, arns: list[str], group_arn: str) -> list[bytes]:
    """The bodies of SnapshotArns objects, after AWS's access rules: the bucket in
    the group's region, the object present, the ElastiCache service allowed
    s3:GetObject by the bucket policy and, for another account's bucket, the
    caller too (all InvalidParameterValue)."""
    bodies = []
    for arn in arns:
        match = S3_ARN_RE.match(arn or "")
        if match is None or "," in arn:
            raise invalid_parameter(f"Invalid S3 ARN {arn}: expected arn:aws:s3:::bucket/key.rdb (no commas).")
        bucket_name, key = match.groups()
        found = s3_ext.find_bucket(bucket_name)
        obj = found[1].keys.get(key) if found is not None else None
        if found is None or obj is None:
            raise invalid_parameter(f"No object was found at {arn}.")
        owner, bucket = found
        if bucket.region_name != backend.region_name:
            raise invalid_parameter(f"The S3 bucket {bucket_name} is outside of the region.")
        if not service_allowed(backend, owner, bucket, "s3:GetObject", key, group_arn):
            raise invalid_parameter(f"ElastiCache has not been granted READ permissions {bucket_name} on the S3 Bucket.")
        if not service_may_decrypt(backend, obj, bucket.region_name, group_arn):
            raise invalid_parameter(f"ElastiCache cannot decrypt {arn}: the object's KMS key does not allow the "
                                    "ElastiCache service kms:Decrypt.")
        readable = not CONFIG.denies(backend.account_id, "s3:GetObject", f"{bucket_name}/{key}") and s3_ext.allows(
            bucket_policy.caller(backend.account_id), owner, bucket, "s3:GetObject", key)
        if not readable:
            raise invalid_parameter(f"The authenticated user does not have access to {arn}.")
        bodies.append(bytes(obj.value))
    return bodies


def _seeded_data(bodies: list[bytes], shards: int, account: str, region: str, ident: str) -> list[rdb.ShardData]:
    """The new group's data: the objects' shard data when each object is one of
    the world's and there is one per shard; otherwise the objects' keys spread
    over the shards (a seed made from their digests)."""
    parsed = [rdb.shard_data(b) for b in bodies]
    if len(parsed) == shards and all(p is not None for p in parsed):
        return [p for p in parsed if p is not None]
    digest = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in bodies)).hexdigest()[:16]
    total = sum(p.keys if p is not None else 0 for p in parsed) or DEFAULT_KEYS_PER_SHARD * shards
    return default_data(account, region, ident, shards, max(1, total // shards), seed=f"seeded-{digest}")


def _create_replication_group(stock: Callable[[ElastiCacheResponse], ActionResult]) -> Callable[..., Any]:
    def handler(self: ElastiCacheResponse) -> ActionResult:
        backend = self.elasticache_backend
        ident = self._get_param("ReplicationGroupId") or ""
        arns = self._get_param("SnapshotArns") or []
        snapshot_name = self._get_param("SnapshotName")
        group_arn = f"arn:aws:elasticache:{backend.region_name}:{backend.account_id}:replicationgroup:{ident}"
        if ident in backend.replication_groups:
            raise fault("ReplicationGroupAlreadyExists", f"Replication group {ident} already exists.")
        bodies = _seed_objects(backend, arns, group_arn) if arns else None
        source = _own_snapshot(backend, snapshot_name) if snapshot_name else None
        if source is not None:
            _require_available(source, "InvalidSnapshotState")
        result = stock(self)
        group = result.result["ReplicationGroup"]
        shards = len(group.node_groups)
        if bodies is not None:
            group.sc_data = _seeded_data(bodies, shards, backend.account_id, backend.region_name, ident)
        elif source is not None:
            group.sc_data = list(getattr(source, "sc_data", None) or group_data(group))
        if bodies is None and source is None:
            return result
        restore_phase.begin(group, ident, CREATE_FAILED)
        if bodies is not None and not all(rdb.is_rdb(b) for b in bodies):
            restore_phase.phase(group).outcome = CREATE_FAILED
        return ActionResult({"ReplicationGroup": _answer(group, "creating")})

    return handler


def _delete_replication_group(self: ElastiCacheResponse) -> ActionResult:
    """Gone at once (the answer says `deleting`); FinalSnapshotIdentifier takes a
    final snapshot first (the group must be available)."""
    backend = self.elasticache_backend
    ident = self._get_param("ReplicationGroupId") or ""
    group = backend.replication_groups.get(ident)
    if group is None:
        raise fault("ReplicationGroupNotFoundFault", f"Replication group {ident} not found.")
    final = self._get_param("FinalSnapshotIdentifier")
    if final:
        _check_snapshottable(backend, group, final.lower())
        begin(take_snapshot(backend, group, final.lower(), None), "creating")
    del backend.replication_groups[ident]
    _untag(backend, group.arn)
    return ActionResult({"ReplicationGroup": _answer(group, "deleting")})


# --- model patches -------------------------------------------------------------------------

def _patch_models() -> None:
    """NumCacheClusters counts the nodes of a cluster-mode-disabled group (moto
    made one unless ReplicasPerNodeGroup); the backend's ARN check knows the
    serverless resource kinds."""
    stock_members = ReplicationGroup._set_node_members_clusters_disabled

    def members_disabled(self: ReplicationGroup, *args: Any, **kwargs: Any) -> None:
        count = kwargs.get("num_cache_clusters") or 1
        if not kwargs.get("replicas_per_node_group"):
            kwargs["replicas_per_node_group"] = max(count, 1) - 1
        stock_members(self, *args, **kwargs)

    ReplicationGroup._set_node_members_clusters_disabled = members_disabled
    stock_init = ElastiCacheBackend.__init__

    def init_backend(self: ElastiCacheBackend, region_name: str, account_id: str) -> None:
        stock_init(self, region_name, account_id)
        self.arn_regex = re.compile(
            r"^arn:aws:elasticache:.*:[0-9]*:(cluster|snapshot|subnetgroup|replicationgroup|user|"
            r"serverlesscache|serverlesscachesnapshot):.*$"
        )

    ElastiCacheBackend.__init__ = init_backend


def install() -> None:
    _patch_models()
    r = ElastiCacheResponse
    r.describe_replication_groups = _describe_replication_groups
    r.describe_snapshots = _describe_snapshots
    r.describe_serverless_caches = _describe_serverless_caches
    r.describe_serverless_cache_snapshots = _describe_serverless_cache_snapshots
    r.list_tags_for_resource = _list_tags_for_resource
    r.add_tags_to_resource = _with_checked_arn(r.add_tags_to_resource)
    r.remove_tags_from_resource = _with_checked_arn(r.remove_tags_from_resource)
    r.create_snapshot = _create_snapshot(r.create_snapshot)
    r.copy_snapshot = _copy_snapshot
    r.delete_snapshot = _delete_snapshot
    r.create_serverless_cache = _create_serverless_cache
    r.delete_serverless_cache = _delete_serverless_cache
    r.create_serverless_cache_snapshot = _create_serverless_cache_snapshot
    r.delete_serverless_cache_snapshot = _delete_serverless_cache_snapshot
    r.export_serverless_cache_snapshot = _export_serverless_cache_snapshot
    r.create_replication_group = _create_replication_group(r.create_replication_group)
    r.delete_replication_group = _delete_replication_group
