"""What moto 5.2.5's RDS lacks for snapcourier, patched into its classes.

Cluster snapshots and instance snapshots are handled by the same code through
SnapshotKind. The patches, by the AWS behaviour each one adds:

* cross-account sharing: an ARN names a snapshot in its owner's account, and
  another account reaches it once the owner shared it (RDSBackend.get_snapshot);
  shared snapshots are listed the way AWS shows them (SharedSnapshotView);
  sharing the same account twice is a no-op; the default `aws/rds` key and
  public sharing of encrypted snapshots are refused;
* copy rules: encrypted shared or cross-region copies need KmsKeyId, an
  unencrypted cluster snapshot cannot be encrypted by copying, shared copies
  stay in the snapshot's region, the source must be `available`;
* paging of the four describe calls (MaxRecords 20..100, opaque Marker);
* a `creating` phase for snapshots made through the API (see control.Config);
* encryption at rest as AWS reports it: no KmsKeyId on unencrypted resources
  (moto says "default_kms_key_id"), the aws/rds key when none was named;
* option groups on instance snapshots: a snapshot records its instance's
  option group; a copy takes `OptionGroupName` (which must exist in the
  copying account and region) or, across regions, the engine's default group
  there (the documented behaviour), and otherwise keeps the snapshot's;
* the copy limit: at most 5 cluster snapshot copies and 20 instance snapshot
  copies in progress per account and region; one more is SnapshotQuotaExceeded;
* the manual snapshot quotas (ManualClusterSnapshots, ManualSnapshots; see
  control.Config) as DescribeAccountAttributes reports them, with how many
  manual snapshots of each kind the account holds in the region; a create or
  copy beyond the quota is SnapshotQuotaExceeded;
* restores: RestoreDBClusterFromSnapshot and RestoreDBInstanceFromDBSnapshot
  from the caller's own snapshot (identifier or ARN) or one shared with it
  (ARN), with the snapshot's key unless KmsKeyId names another, the request's
  Tags, subnet group, security groups and DeletionProtection; the restored
  cluster or instance, and any DB instance created into a cluster, goes
  through a `creating` phase (restore_phase, control.Config restore_reads,
  restore_failures, stuck) instead of moto's status that flips on first read;
* deletes as AWS does them: SkipFinalSnapshot or a final snapshot identifier
  (exactly one), a final snapshot only of an available resource, a cluster
  only once its instances are gone; a deleted cluster's automated snapshots go
  with it.

RDS requests are serialised by the server (control.WORLD_LOCK), so the
handlers here do not lock themselves.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.exceptions import (
    DBClusterSnapshotNotFoundError,
    DBInstanceAlreadyExists,
    DBSubnetGroupNotFoundError,
    OptionGroupNotFoundFaultError,
    SnapshotQuotaExceededFault,
    DBSnapshotNotFoundFault,
    InvalidDBClusterSnapshotStateFault,
    InvalidDBClusterStateFault,
    InvalidParameterCombination,
    InvalidParameterValue,
    KMSKeyNotAccessibleFault,
    RDSClientError,
)
from moto.rds.models import (
    DBCluster,
    DBClusterSnapshot,
    DBInstance,
    DBSnapshot,
    RDSBackend,
    SnapshotAttributesMixin,
    rds_backends,
)
from moto.rds.responses import RDSResponse
from moto.rds.utils import split_arn

from . import kms_keys, restore_phase
from .control import CONFIG, REQUESTS

# Copies in progress AWS allows per account and region, by snapshot kind.
COPY_LIMITS = {DBClusterSnapshot: 5, DBSnapshot: 20}
MAX_RECORDS_DEFAULT = 100
MAX_RECORDS_RANGE = range(20, 101)


class InvalidDBSnapshotStateFault(RDSClientError):
    """moto has no class for this one; its wire code is InvalidDBSnapshotState."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidDBSnapshotStateFault", message)


@dataclass(frozen=True)
class SnapshotKind:
    """What differs between cluster snapshots and instance snapshots."""

    model: type[DBClusterSnapshot] | type[DBSnapshot]
    noun: str  # as in AWS's messages
    arn_type: str
    id_attr: str
    id_param: str
    source_param: str
    source_attr: str  # where a copy records its source
    parent_param: str
    parent_filter: str
    result_key: str
    list_key: str
    not_found: Callable[[str], Exception]
    invalid_state: Callable[[str], Exception]

    def ident(self, snapshot: Any) -> str:
        return getattr(snapshot, self.id_attr)

    def store(self, backend: RDSBackend) -> Any:
        return backend.resource_map[self.model]

    def describe_own(self, backend: RDSBackend, parent: str | None, ident: str | None,
                     snapshot_type: str | None, filters: dict[str, Any]) -> list[Any]:
        if self.model is DBClusterSnapshot:
            return backend.describe_db_cluster_snapshots(parent, ident, snapshot_type, filters)
        return backend.describe_db_snapshots(parent, ident, snapshot_type, filters)


CLUSTER = SnapshotKind(
    model=DBClusterSnapshot,
    noun="DB cluster snapshot",
    arn_type="cluster-snapshot",
    id_attr="db_cluster_snapshot_identifier",
    id_param="DBClusterSnapshotIdentifier",
    source_param="SourceDBClusterSnapshotIdentifier",
    source_attr="source_db_cluster_snapshot_arn",
    parent_param="DBClusterIdentifier",
    parent_filter="db-cluster-id",
    result_key="DBClusterSnapshot",
    list_key="DBClusterSnapshots",
    not_found=DBClusterSnapshotNotFoundError,
    invalid_state=InvalidDBClusterSnapshotStateFault,
)
INSTANCE = SnapshotKind(
    model=DBSnapshot,
    noun="DB snapshot",
    arn_type="snapshot",
    id_attr="db_snapshot_identifier",
    id_param="DBSnapshotIdentifier",
    source_param="SourceDBSnapshotIdentifier",
    source_attr="source_db_snapshot_identifier",
    parent_param="DBInstanceIdentifier",
    parent_filter="db-instance-id",
    result_key="DBSnapshot",
    list_key="DBSnapshots",
    not_found=DBSnapshotNotFoundFault,
    invalid_state=InvalidDBSnapshotStateFault,
)
KIND_OF_MODEL = {DBClusterSnapshot: CLUSTER, DBSnapshot: INSTANCE}


def is_shared_with(snapshot: Any, account: str) -> bool:
    restore = snapshot.attributes.get("restore", [])
    return account in restore or "all" in restore


class SharedSnapshotView:
    """Another account's snapshot as AWS lists it to an account it is shared
    with: named by its ARN and typed "shared". Its TagList is empty: tags
    belong to the owner's account, and a test world that showed them would
    let the product rely on something AWS may not give it."""

    snapshot_type = "shared"

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot

    @property
    def db_cluster_snapshot_identifier(self) -> str:
        return self.snapshot.arn

    @property
    def db_snapshot_identifier(self) -> str:
        return self.snapshot.arn

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.snapshot, name)


def _underlying(item: Any) -> Any:
    return item.snapshot if isinstance(item, SharedSnapshotView) else item


# --- creating phase ---------------------------------------------------------

def mark_creating(snapshot: Any, reads: int | None) -> None:
    """Show the snapshot as "creating" in its next `reads` describe responses
    (None: until further notice), and for as long as its id matches a `stuck`
    pattern."""
    snapshot.status = "creating"
    snapshot.percent_progress = 0
    snapshot.sc_reads_left = reads


def begin_creating(snapshot: Any, kind: SnapshotKind) -> None:
    """A snapshot just made through the API: creating for `creating_reads`."""
    reads = CONFIG.creating_reads
    if reads or CONFIG.is_stuck(kind.ident(snapshot)):
        mark_creating(snapshot, reads)


def _observe(snapshot: Any, kind: SnapshotKind) -> None:
    """A describe response is about to include this snapshot."""
    if snapshot.status != "creating" or CONFIG.is_stuck(kind.ident(snapshot)):
        return
    left = getattr(snapshot, "sc_reads_left", None)
    if left is None:
        return
    if left == 0:
        snapshot.status = "available"
        snapshot.percent_progress = 100
    else:
        snapshot.sc_reads_left = left - 1


# --- paging -----------------------------------------------------------------

def _paginate(items: Iterable[Any], key: Callable[[Any], str], params: Any) -> tuple[list[Any], str | None]:
    """AWS's MaxRecords/Marker contract. The marker names the last item
    returned, so a page boundary survives items added or deleted meanwhile."""
    max_records = params.get("MaxRecords")
    if max_records is None:
        max_records = MAX_RECORDS_DEFAULT
    elif max_records not in MAX_RECORDS_RANGE:
        raise InvalidParameterValue(
            f"Invalid value {max_records} for MaxRecords. Must be between 20 and 100"
        )
    ordered = sorted(items, key=key)
    marker = params.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidParameterValue(f"Invalid marker: {marker}") from None
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:max_records]
    if len(ordered) <= max_records:
        return page, None
    return page, base64.urlsafe_b64encode(key(page[-1]).encode()).decode()


# --- lookups ----------------------------------------------------------------

def get_snapshot(self: RDSBackend, identifier: str, resource_type: type,
                 not_found_exception: Callable[[str], Exception]) -> Any:
    """Replaces RDSBackend.get_snapshot, which looks an ARN up in the caller's
    own account whatever account it names. Used by copy and restore."""
    kind = KIND_OF_MODEL[resource_type]
    owner, region, name = self.account_id, self.region_name, identifier
    if identifier.startswith("arn:"):
        try:
            region, owner, arn_type, name = split_arn(identifier)
        except ValueError:
            raise not_found_exception(identifier) from None
        if arn_type != kind.arn_type:
            raise not_found_exception(identifier)
    try:
        backend = rds_backends[owner][region]
    except KeyError:
        raise not_found_exception(identifier) from None
    snapshot = kind.store(backend).get(name)
    if snapshot is None or (owner != self.account_id and not is_shared_with(snapshot, self.account_id)):
        raise not_found_exception(identifier)
    return snapshot


def _describe_by_arn(backend: RDSBackend, kind: SnapshotKind, arn: str) -> Any:
    try:
        region = split_arn(arn)[0]
    except ValueError:
        raise kind.not_found(arn) from None
    if region != backend.region_name:
        raise kind.not_found(arn)
    snapshot = backend.get_snapshot(arn, kind.model, kind.not_found)
    return snapshot if snapshot.account_id == backend.account_id else SharedSnapshotView(snapshot)


def _shared_with_caller(backend: RDSBackend, kind: SnapshotKind, parent: str | None,
                        filters: dict[str, Any]) -> list[SharedSnapshotView]:
    views = {}
    # Only backends that exist can hold snapshots: iterate, never index.
    for regional in rds_backends.values():
        for other in regional.values():
            if other.region_name != backend.region_name or other.account_id == backend.account_id:
                continue
            for snapshot in kind.store(other).values():
                if is_shared_with(snapshot, backend.account_id):
                    views[snapshot.arn] = SharedSnapshotView(snapshot)
    if parent:
        filters = {**filters, kind.parent_filter: [parent]}
    if filters:
        views = backend._filter_resources(views, filters, kind.model)
    return list(views.values())


# --- response handlers ------------------------------------------------------

def _describe_snapshots(self: RDSResponse, kind: SnapshotKind) -> ActionResult:
    params = self.params
    backend = self.backend
    ident = params.get(kind.id_param)
    parent = params.get(kind.parent_param)
    snapshot_type = params.get("SnapshotType")
    filters = {f["Name"]: f["Values"] for f in params.get("Filters", [])}
    if ident and ident.startswith("arn:"):
        items = [_describe_by_arn(backend, kind, ident)]
    else:
        items = []
        if snapshot_type != "shared":
            # a copy: moto merges its own filters into the dict it is given
            items.extend(kind.describe_own(backend, parent, ident, snapshot_type, dict(filters)))
        # AWS: SnapshotType=shared lists shared snapshots; with no type,
        # IncludeShared adds them to the account's own.
        if snapshot_type == "shared" or (snapshot_type is None and params.get("IncludeShared") and not ident):
            items.extend(_shared_with_caller(backend, kind, parent, filters))
    page, marker = _paginate(items, kind.ident, params)
    for item in page:
        _observe(_underlying(item), kind)
    return ActionResult({kind.list_key: page, "Marker": marker})


def _own_snapshot(self: RDSResponse, kind: SnapshotKind) -> Any:
    return kind.store(self.backend).get(self.params.get(kind.id_param, ""))


def _require_available(snapshot: Any, kind: SnapshotKind) -> None:
    if snapshot.status != "available":
        raise kind.invalid_state(
            f"{kind.noun} {kind.ident(snapshot)} is not currently in the available state."
        )


Handler = Callable[[RDSResponse], ActionResult]


def _copy_snapshot(self: RDSResponse, kind: SnapshotKind, stock: Handler) -> ActionResult:
    params = self.params
    backend = self.backend
    kms_key_id = params.get("KmsKeyId")
    source = backend.get_snapshot(params.get(kind.source_param, ""), kind.model, kind.not_found)
    shared = source.account_id != backend.account_id
    cross_region = source.region != backend.region_name
    if shared and cross_region:
        raise InvalidParameterValue(
            f"A shared {kind.noun} can only be copied in the AWS Region where it was shared."
        )
    _require_available(source, kind)
    _check_copy_limit(backend, kind)
    _check_manual_quota(backend, kind)
    option_group = _copy_option_group(backend, kind, source, params.get("OptionGroupName"), cross_region)
    if source.storage_encrypted and not kms_key_id and (shared or cross_region):
        what = "a shared" if shared else "a cross-Region copy of an"
        raise InvalidParameterCombination(
            f"KmsKeyId is required to make {what} encrypted {kind.noun}."
        )
    if kind is CLUSTER and kms_key_id and not source.storage_encrypted:
        raise InvalidParameterCombination(
            "Cannot specify KmsKeyId when copying an unencrypted DB cluster snapshot: "
            "an unencrypted DB cluster snapshot cannot be encrypted by copying it."
        )
    result = stock(self)
    copy = result.result[kind.result_key]
    setattr(copy, kind.source_attr, source.arn)
    copy.sc_is_copy = True
    if option_group is not None:
        copy.option_group_name = option_group
    begin_creating(copy, kind)
    return result


QUOTA_NAMES = {DBClusterSnapshot: "ManualClusterSnapshots", DBSnapshot: "ManualSnapshots"}


def _manual_count(backend: RDSBackend, kind: SnapshotKind) -> int:
    return sum(1 for s in kind.store(backend).values() if getattr(s, "snapshot_type", "manual") == "manual")


def _check_manual_quota(backend: RDSBackend, kind: SnapshotKind) -> None:
    if _manual_count(backend, kind) >= CONFIG.manual_snapshot_quota(QUOTA_NAMES[kind.model]):
        raise SnapshotQuotaExceededFault()


def _describe_account_attributes(self: RDSResponse) -> ActionResult:
    quotas = []
    for kind in (CLUSTER, INSTANCE):
        name = QUOTA_NAMES[kind.model]
        quotas.append({
            "AccountQuotaName": name,
            "Used": _manual_count(self.backend, kind),
            "Max": CONFIG.manual_snapshot_quota(name),
        })
    return ActionResult({"AccountQuotas": quotas})


def _check_copy_limit(backend: RDSBackend, kind: SnapshotKind) -> None:
    limit = COPY_LIMITS[kind.model]
    in_progress = sum(
        1 for s in kind.store(backend).values()
        if getattr(s, "sc_is_copy", False) and s.status != "available"
    )
    where = f"{backend.account_id}/{backend.region_name}/{kind.model.__name__}"
    if in_progress >= limit:
        REQUESTS.copy_refused(where)
        raise SnapshotQuotaExceededFault()
    REQUESTS.copy_started(where, in_progress + 1)


def _copy_option_group(backend: RDSBackend, kind: SnapshotKind, source: Any,
                       requested: str | None, cross_region: bool) -> str | None:
    """The option group a copy of an instance snapshot gets (None: not one)."""
    if kind is not INSTANCE:
        return None
    if requested:
        if requested not in backend.option_groups:
            raise OptionGroupNotFoundFaultError(requested)
        return requested
    if cross_region:
        return _default_option_group(source)
    return getattr(source, "option_group_name", None)


def _default_option_group(snapshot: Any) -> str:
    engine = snapshot.engine
    version = str(snapshot.engine_version or "")
    parts = version.split(".")
    major = "-".join(parts[:2]) if engine in ("mysql", "mariadb") or engine.startswith("oracle") \
        or engine.startswith("sqlserver") else parts[0]
    return f"default:{engine}-{major}"


def _patch_snapshot_option_group() -> None:
    """AWS records the instance's option group on its snapshots; moto does not."""
    snapshot_init = DBSnapshot.__init__

    def init_snapshot(self: DBSnapshot, *args: Any, **kwargs: Any) -> None:
        snapshot_init(self, *args, **kwargs)
        self.option_group_name = getattr(self.database, "option_group_name", None)

    DBSnapshot.__init__ = init_snapshot


def _create_snapshot(self: RDSResponse, kind: SnapshotKind, stock: Handler) -> ActionResult:
    _check_manual_quota(self.backend, kind)
    result = stock(self)
    begin_creating(result.result[kind.result_key], kind)
    return result


def _delete_snapshot(self: RDSResponse, kind: SnapshotKind, stock: Handler) -> ActionResult:
    snapshot = _own_snapshot(self, kind)
    if snapshot is not None:
        if snapshot.snapshot_type == "automated":
            raise kind.invalid_state(f"Only manual {kind.noun}s can be deleted.")
        if snapshot.status == "creating":
            raise kind.invalid_state(
                f"Cannot delete {kind.noun} {kind.ident(snapshot)} while it is being created."
            )
    return stock(self)


def _modify_snapshot_attribute(self: RDSResponse, kind: SnapshotKind, stock: Handler) -> ActionResult:
    snapshot = _own_snapshot(self, kind)
    if snapshot is not None:
        _require_available(snapshot, kind)
        adding = self.params.get("ValuesToAdd") or []
        if self.params.get("AttributeName") == "restore" and adding and snapshot.storage_encrypted:
            if "all" in adding:
                raise InvalidParameterValue(f"Encrypted {kind.noun}s cannot be shared publicly.")
            if kms_keys.is_aws_managed(snapshot.kms_key_id, snapshot.account_id, snapshot.region):
                raise InvalidParameterValue(
                    f"Snapshots encrypted with the default KMS key (aws/rds) cannot be shared. "
                    f"Copy {kind.ident(snapshot)} with a customer managed key and share the copy."
                )
    return stock(self)


def _describe_paged(list_key: str, describe: Callable[[RDSResponse, str | None, dict[str, Any]], list[Any]],
                    key: Callable[[Any], str], id_param: str) -> Handler:
    """DescribeDBClusters / DescribeDBInstances: paged, and each item a response
    includes counts as a read of its restore phase."""
    def handler(self: RDSResponse) -> ActionResult:
        filters = {f["Name"]: f["Values"] for f in self.params.get("Filters", [])}
        items = describe(self, self.params.get(id_param), filters)
        page, marker = _paginate(items, key, self.params)
        for item in page:
            restore_phase.observe(item)
        return ActionResult({list_key: page, "Marker": marker})

    return handler


# --- restores and deletes ---------------------------------------------------

# The status of a DB cluster or DB instance whose restore could not complete.
RESTORE_FAILED = "failed"
# What a restored instance does not take over from the snapshot's instance.
NOT_RESTORED = frozenset({"backend", "db_parameter_group_name", "vpc_security_group_ids", "max_allocated_storage",
                          "db_subnet_group", "status", "sc_restore"})


class DBClusterAlreadyExistsFault(RDSClientError):
    """moto has no class for this one (its CreateDBCluster silently replaces a cluster)."""

    def __init__(self, ident: str) -> None:
        super().__init__("DBClusterAlreadyExistsFault", f"DB cluster {ident} already exists.")


class InvalidDBInstanceStateFault(RDSClientError):
    """moto's class of this name answers with the code InvalidDBInstanceStateFault;
    AWS's wire code is InvalidDBInstanceState."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidDBInstanceState", message)


def _restore_source(backend: RDSBackend, kind: SnapshotKind, ident: str) -> Any:
    """The snapshot a restore names: the caller's own by identifier or ARN, or
    another account's shared with the caller, by ARN ("If you are restoring from
    a shared manual DB snapshot, the DBSnapshotIdentifier must be the ARN"); in
    the region called, and available."""
    snapshot = backend.get_snapshot(ident, kind.model, kind.not_found)
    if snapshot.region != backend.region_name:
        raise kind.not_found(ident)
    _require_available(snapshot, kind)
    return snapshot


def _given(params: Any) -> dict[str, Any]:
    """The request's parameters that carry a value, by moto's snake_case names:
    what overrides the configuration a restore takes from the snapshot's source."""
    return {name: value for name, value in params.items() if value is not None and value != []}


def _restored_tags(params: Any, source_tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """The request's Tags; without any, the source's (as moto restores)."""
    tags = params.get("Tags") or source_tags or []
    return [{"Key": t["Key"], "Value": t.get("Value") or ""} for t in tags]


def _require_subnet_group(backend: RDSBackend, name: str | None) -> None:
    """DBSubnetGroupName "must match the name of an existing DB subnet group"."""
    if name and name not in backend.subnet_groups:
        raise DBSubnetGroupNotFoundError(name)


def _restore_db_cluster_from_snapshot(self: RDSResponse) -> ActionResult:
    """An Aurora cluster from a DB cluster snapshot. KmsKeyId: "If you don't
    specify a value ... the restored DB cluster is encrypted using the KMS key
    that was used to encrypt the DB ... cluster snapshot" (unencrypted stays
    unencrypted). Networking, DeletionProtection (default off) and Tags come
    from the request, not from the snapshot's cluster; the cluster then goes
    through its restore phase. Stock moto looked the snapshot up by name only
    (an ARN was not found) and replaced a cluster of the same identifier."""
    params = self.params
    backend = self.backend
    ident = params.get("DBClusterIdentifier") or ""
    if ident in backend.clusters:
        raise DBClusterAlreadyExistsFault(ident)
    snapshot = _restore_source(backend, CLUSTER, params.get("SnapshotIdentifier") or "")
    _require_subnet_group(backend, params.get("DBSubnetGroupName"))
    key = params.get("KmsKeyId")
    props = {**snapshot.cluster.get_cfg(), **_given(params)}
    props.update({
        "db_cluster_identifier": ident,
        "tags": _restored_tags(params, snapshot.cluster.tags),
        "kms_key_id": key or snapshot.kms_key_id,
        "storage_encrypted": bool(key) or bool(snapshot.storage_encrypted),
        "db_subnet_group_name": params.get("DBSubnetGroupName") or "default",
        "vpc_security_group_ids": list(params.get("VpcSecurityGroupIds") or []),
        "deletion_protection": bool(params.get("DeletionProtection")),
        "manage_master_user_password": bool(params.get("ManageMasterUserPassword")),
        "global_cluster_identifier": None,
        "replication_source_identifier": None,
    })
    cluster = backend.create_db_cluster(props)
    restore_phase.begin(cluster, cluster.db_cluster_identifier, RESTORE_FAILED)
    return ActionResult({"DBCluster": cluster})


def _restored_option_group(backend: RDSBackend, snapshot: Any, requested: str | None) -> str | None:
    """OptionGroupName, else the snapshot's group if it exists here (None: the engine's default)."""
    if requested:
        return requested
    group = getattr(snapshot, "option_group_name", None)
    return group if group in backend.option_groups else None


def _restored_instance_props(backend: RDSBackend, snapshot: Any, params: Any) -> dict[str, Any]:
    """CreateDBInstance's arguments for an instance restored from `snapshot`:
    the configuration of the snapshot's instance (as moto restores it), what
    the request gives, the snapshot's encryption, and the request's (or
    default) networking and DeletionProtection."""
    original = snapshot.database
    props = {
        (name[1:] if name.startswith("_") else name): copy.copy(value)
        for name, value in vars(original).items() if name.lstrip("_") not in NOT_RESTORED
    }
    props.update(_given(params))
    allocated = params.get("AllocatedStorage")
    if allocated is not None and allocated < snapshot.allocated_storage:
        raise InvalidParameterValue(
            "The allocated storage size can't be less than the source snapshot or backup size."
        )
    props.update({
        "db_instance_identifier": params.get("DBInstanceIdentifier"),
        "tags": _restored_tags(params, original.tags),
        "kms_key_id": snapshot.kms_key_id,
        "storage_encrypted": bool(snapshot.encrypted),
        "db_subnet_group_name": params.get("DBSubnetGroupName"),
        "vpc_security_group_ids": list(params.get("VpcSecurityGroupIds") or []),
        "db_parameter_group_name": params.get("DBParameterGroupName"),
        "deletion_protection": bool(params.get("DeletionProtection")),
        "manage_master_user_password": bool(params.get("ManageMasterUserPassword")),
        "db_cluster_identifier": None,
        "source_db_instance_identifier": None,
    })
    group = _restored_option_group(backend, snapshot, params.get("OptionGroupName"))
    if group is None:
        props.pop("option_group_name", None)
    else:
        props["option_group_name"] = group
    return props


def _restore_db_instance_from_db_snapshot(self: RDSResponse) -> ActionResult:
    """An RDS DB instance from a DB snapshot, encrypted as the snapshot is; it
    goes through its restore phase. Stock moto kept the source instance's
    deletion protection and subnet group unless the request gave true or a
    name, and could not restore a shared snapshot by ARN."""
    params = self.params
    backend = self.backend
    if (params.get("DBInstanceIdentifier") or "") in backend.databases:
        raise DBInstanceAlreadyExists()
    snapshot = _restore_source(backend, INSTANCE, params.get("DBSnapshotIdentifier") or "")
    _require_subnet_group(backend, params.get("DBSubnetGroupName"))
    instance = backend.create_db_instance(_restored_instance_props(backend, snapshot, params))
    restore_phase.begin(instance, instance.db_instance_identifier, RESTORE_FAILED)
    return ActionResult({"DBInstance": instance})


def _create_db_instance(self: RDSResponse, stock: Handler) -> ActionResult:
    """A DB instance created into a cluster starts `creating` and goes through
    the restore phase (a drill restores a cluster, then adds an instance).
    A cluster whose restore failed takes no instances (InvalidDBClusterStateFault)."""
    cluster = self.backend.clusters.get(self.params.get("DBClusterIdentifier") or "")
    # _status: reading moto's status property would flip a new cluster to available
    if cluster is not None and cluster._status == RESTORE_FAILED:
        raise InvalidDBClusterStateFault(
            f"DB cluster {cluster.db_cluster_identifier} is in state {RESTORE_FAILED}: no instance can be added."
        )
    result = stock(self)
    instance = result.result["DBInstance"]
    if instance.db_cluster_identifier is not None:
        restore_phase.begin(instance, instance.db_instance_identifier, RESTORE_FAILED)
    return result


def _final_snapshot_wanted(params: Any, final_param: str) -> bool:
    """SkipFinalSnapshot (default false) or the final snapshot's identifier, exactly one."""
    skip = bool(params.get("SkipFinalSnapshot"))
    final = params.get(final_param)
    if skip and final:
        raise InvalidParameterCombination(f"{final_param} cannot be specified when SkipFinalSnapshot is enabled.")
    if not skip and not final:
        raise InvalidParameterCombination(f"{final_param} is required unless SkipFinalSnapshot is specified.")
    return not skip


def _delete_db_instance(self: RDSResponse, stock: Handler) -> ActionResult:
    """Deletes at once in any status (the answer says "deleting"); automated
    snapshots go too unless DeleteAutomatedBackups=false (moto). An instance
    outside a cluster needs SkipFinalSnapshot or FinalDBSnapshotIdentifier, and
    a final snapshot needs it available ("When a DB instance is in a failure
    state ... you can only delete it when you skip creation of the final
    snapshot"); for an Aurora instance neither applies."""
    instance = self.backend.databases.get(self.params.get("DBInstanceIdentifier") or "")
    if instance is not None and instance.db_cluster_identifier is None:
        if _final_snapshot_wanted(self.params, "FinalDBSnapshotIdentifier") and instance.status != "available":
            raise InvalidDBInstanceStateFault(
                f"DB instance {instance.db_instance_identifier} is {instance.status}: "
                "it can only be deleted with SkipFinalSnapshot."
            )
    return stock(self)


def _delete_db_cluster(self: RDSResponse, stock: Handler) -> ActionResult:
    """Deletes at once in any status (the answer says "deleting"); refused while
    the cluster has instances (moto: InvalidDBClusterStateFault). "When you
    delete a DB cluster, all automated backups for that DB cluster are deleted";
    a final snapshot needs the cluster available."""
    backend = self.backend
    cluster = backend.clusters.get(self.params.get("DBClusterIdentifier") or "")
    if cluster is None:
        return stock(self)  # DBClusterNotFoundFault
    # _status: reading moto's status property would flip a new cluster to available
    if _final_snapshot_wanted(self.params, "FinalDBSnapshotIdentifier") and cluster._status != "available":
        raise InvalidDBClusterStateFault(
            f"DB cluster {cluster.db_cluster_identifier} is {cluster._status}: "
            "a final snapshot can only be taken of an available cluster."
        )
    automated = [
        ident for ident, snapshot in backend.cluster_snapshots.items()
        if snapshot.snapshot_type == "automated" and snapshot.db_cluster_identifier == cluster.db_cluster_identifier
    ]
    result = stock(self)
    for ident in automated:
        backend.cluster_snapshots.pop(ident, None)
    result.result["DBCluster"].status = "deleting"
    return result


def _patch_cluster_status() -> None:
    """moto's DBCluster.status turns "creating" into "available" when first
    read. A restored cluster's status is the one its restore phase sets."""
    stock = DBCluster.status

    def get_status(self: DBCluster) -> str:
        if restore_phase.phase(self) is not None:
            return self._status
        return stock.fget(self)

    DBCluster.status = property(get_status, stock.fset)


def _with_stock(handler: Callable[[RDSResponse, Handler], ActionResult], stock: Handler) -> Handler:
    return lambda self: handler(self, stock)


# --- encryption at rest -----------------------------------------------------

def _encryption_at_rest(backend: RDSBackend, key_ref: str | None, encrypted: bool) -> tuple[str | None, bool]:
    """(KmsKeyId as an ARN or None, StorageEncrypted) as AWS reports them."""
    if key_ref == "default_kms_key_id":  # moto's placeholder, passed on by restores
        key_ref = None
    if not key_ref and not encrypted:
        return None, False
    if not key_ref:
        key_ref = kms_keys.ensure_default_rds_key(backend.account_id, backend.region_name)
    try:
        return backend._validate_kms_key(key_ref), True
    except AttributeError:  # moto's way of saying there is no such alias
        raise KMSKeyNotAccessibleFault(key_ref) from None


def _patch_encryption() -> None:
    cluster_init = DBCluster.__init__
    instance_init = DBInstance.__init__

    def init_cluster(self: DBCluster, backend: RDSBackend, *args: Any, **kwargs: Any) -> None:
        cluster_init(self, backend, *args, **kwargs)
        self.kms_key_id, self.storage_encrypted = _encryption_at_rest(
            backend, kwargs.get("kms_key_id"), bool(kwargs.get("storage_encrypted"))
        )

    def init_instance(self: DBInstance, backend: RDSBackend, *args: Any, **kwargs: Any) -> None:
        instance_init(self, backend, *args, **kwargs)
        if self.db_cluster_identifier is None:  # members take the cluster's
            self.kms_key_id, self.storage_encrypted = _encryption_at_rest(
                backend, kwargs.get("kms_key_id"), bool(kwargs.get("storage_encrypted"))
            )

    DBCluster.__init__ = init_cluster
    DBInstance.__init__ = init_instance


def _patch_attribute_dedup() -> None:
    modify_attribute = SnapshotAttributesMixin.modify_attribute

    def dedup_modify_attribute(self: Any, attribute_name: str, values_to_add: list[str] | None,
                               values_to_remove: list[str] | None) -> None:
        """Adding a value already present is a no-op in AWS; moto appends it
        again. Values also being removed are kept so moto still rejects them."""
        present = self.attributes.get(attribute_name, [])
        removing = values_to_remove or []
        fresh = [v for v in dict.fromkeys(values_to_add or []) if v not in present or v in removing]
        modify_attribute(self, attribute_name, fresh, values_to_remove)

    SnapshotAttributesMixin.modify_attribute = dedup_modify_attribute


def _bind(kind: SnapshotKind, handler: Callable[..., ActionResult], stock: Handler | None = None) -> Handler:
    if stock is None:
        return lambda self: handler(self, kind)
    return lambda self: handler(self, kind, stock)


def install() -> None:
    RDSBackend.get_snapshot = get_snapshot
    _patch_encryption()
    _patch_attribute_dedup()
    _patch_snapshot_option_group()
    _patch_cluster_status()
    r = RDSResponse
    r.restore_db_cluster_from_snapshot = _restore_db_cluster_from_snapshot
    r.restore_db_instance_from_db_snapshot = _restore_db_instance_from_db_snapshot
    r.create_db_instance = _with_stock(_create_db_instance, r.create_db_instance)
    r.delete_db_instance = _with_stock(_delete_db_instance, r.delete_db_instance)
    r.delete_db_cluster = _with_stock(_delete_db_cluster, r.delete_db_cluster)
    r.describe_account_attributes = _describe_account_attributes
    r.describe_db_cluster_snapshots = _bind(CLUSTER, _describe_snapshots)
    r.describe_db_snapshots = _bind(INSTANCE, _describe_snapshots)
    r.create_db_cluster_snapshot = _bind(CLUSTER, _create_snapshot, r.create_db_cluster_snapshot)
    r.create_db_snapshot = _bind(INSTANCE, _create_snapshot, r.create_db_snapshot)
    r.copy_db_cluster_snapshot = _bind(CLUSTER, _copy_snapshot, r.copy_db_cluster_snapshot)
    r.copy_db_snapshot = _bind(INSTANCE, _copy_snapshot, r.copy_db_snapshot)
    r.delete_db_cluster_snapshot = _bind(CLUSTER, _delete_snapshot, r.delete_db_cluster_snapshot)
    r.delete_db_snapshot = _bind(INSTANCE, _delete_snapshot, r.delete_db_snapshot)
    r.modify_db_cluster_snapshot_attribute = _bind(CLUSTER, _modify_snapshot_attribute,
                                                   r.modify_db_cluster_snapshot_attribute)
    r.modify_db_snapshot_attribute = _bind(INSTANCE, _modify_snapshot_attribute, r.modify_db_snapshot_attribute)
    r.describe_db_clusters = _describe_paged(
        "DBClusters",
        lambda self, ident, filters: self.backend.describe_db_clusters(ident, filters=filters),
        lambda cluster: cluster.db_cluster_identifier,
        "DBClusterIdentifier",
    )
    r.describe_db_instances = _describe_paged(
        "DBInstances",
        lambda self, ident, filters: self.backend.describe_db_instances(ident, filters=filters),
        lambda instance: instance.db_instance_identifier,
        "DBInstanceIdentifier",
    )
