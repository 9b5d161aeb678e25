"""What moto 5.2.5's Redshift lacks for snapcourier, patched into its classes.

By the AWS behaviour each patch adds (README.md says which AWS document each
rule comes from):

* responses carry OwnerAccount, KmsKeyId, AccountsWithRestoreAccess,
  ManualSnapshotRetentionPeriod, SourceRegion, SnapshotArn; encrypted clusters
  without a named key use the AWS-managed `aws/redshift` key;
* DescribeClusterSnapshots: the caller's own snapshots by default, another
  account's snapshots authorized to the caller with OwnerAccount, SnapshotType,
  TagKeys/TagValues, StartTime/EndTime, SnapshotArn and MaxRecords/Marker;
  DescribeClusters and DescribeSnapshotCopyGrants page and filter by tags too;
* AuthorizeSnapshotAccess / RevokeSnapshotAccess (absent from moto), and a
  DeleteClusterSnapshot that refuses while accounts still have access;
* CopyClusterSnapshot (absent from moto) within a region;
* CreateClusterSnapshot with ManualSnapshotRetentionPeriod, refused on a
  cluster that is not available;
* a `creating` phase for snapshots made through the API (control.Config);
* snapshot copy grants and EnableSnapshotCopy with AWS's checks, and the copy
  itself: a manual snapshot of a cluster with copy enabled, once available,
  gets a copy in the destination region, made when the next Redshift request
  of the owning account arrives (replicate_pending);
* RestoreFromClusterSnapshot from the caller's own snapshot or, with
  OwnerAccount or SnapshotArn, from another account's snapshot that account
  authorized the caller to restore; the restored cluster goes through a
  `creating` phase (restore_phase: restore_reads, restore_failures, stuck) and
  reports RestoreStatus accordingly;
* DeleteCluster with AWS's final-snapshot rules, deleting the cluster's own
  automated snapshots only; tag calls only reach resources of the caller's
  account and region.

Redshift requests are serialised by the server (control.WORLD_LOCK), so the
handlers here do not lock themselves.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.redshift.exceptions import (
    ClusterAlreadyExistsFaultError,
    ClusterNotFoundError,
    ClusterSnapshotAlreadyExistsError,
    ClusterSnapshotNotFoundError,
    ClusterSubnetGroupNotFoundError,
    InvalidParameterCombinationError,
    InvalidParameterValueError,
    RedshiftClientError,
    ResourceNotFoundFaultError,
    SnapshotCopyAlreadyDisabledFaultError,
    SnapshotCopyAlreadyEnabledFaultError,
    SnapshotCopyGrantAlreadyExistsFaultError,
    SnapshotCopyGrantNotFoundFaultError,
    UnknownSnapshotCopyRegionFaultError,
)
from moto.redshift.models import Cluster, RedshiftBackend, Snapshot, SnapshotCopyGrant, redshift_backends
from moto.redshift.responses import RedshiftResponse

from . import kms_keys, restore_phase
from .control import CONFIG

MAX_RECORDS_DEFAULT = 100
MAX_RECORDS_RANGE = range(20, 101)
MAX_SHARED_ACCOUNTS = 20  # "You can authorize up to 20 [accounts] for each snapshot"
SUPPORT_ACCOUNT = "amazon-redshift-support"
ACCOUNT_RE = re.compile(r"^\d{12}$")
# rs:<cluster>-<yyyy-mm-dd-hh-mm-ss>, as AWS names automated snapshots
AUTOMATED_FORMAT = "%Y-%m-%d-%H-%M-%S"
SNAPSHOT_ARN_RE = re.compile(r"^arn:aws[\w-]*:redshift:([^:]+):(\d{12}):snapshot:([^/]+)/(.+)$")


def automated_id(cluster: str, created: datetime) -> str:
    return f"rs:{cluster}-{created.strftime(AUTOMATED_FORMAT)}"


# --- faults (wire codes from the Redshift API model) --------------------------

def _fault(code: str, message: str) -> RedshiftClientError:
    return RedshiftClientError(code, message)


def invalid_snapshot_state(message: str) -> RedshiftClientError:
    return _fault("InvalidClusterSnapshotState", message)


def invalid_retention(value: Any) -> RedshiftClientError:
    return _fault("InvalidRetentionPeriodFault",
                  f"Invalid retention period {value}: the value must be either -1 or an integer between 1 and 3,653.")


def invalid_parameter(message: str) -> RedshiftClientError:
    return InvalidParameterValueError(message)


def check_manual_retention(value: Any) -> int:
    """ManualSnapshotRetentionPeriod: -1 (keep for ever) or 1..3653 days."""
    if value is None:
        return -1
    if not isinstance(value, int) or isinstance(value, bool) or not (value == -1 or 1 <= value <= 3653):
        raise invalid_retention(value)
    return value


# --- model additions ------------------------------------------------------------

def default_key(account: str, region: str) -> str:
    return kms_keys.ensure_default_redshift_key(account, region)


def key_arn(key_ref: str, account: str, region: str) -> str:
    """A key named by id, alias or ARN, as the ARN Redshift reports; a key the
    region does not know is reported as given."""
    key = kms_keys.find_key(key_ref, account, region)
    return key.arn if key is not None else key_ref


def _encryption_at_rest(cluster: Cluster) -> tuple[bool, str | None]:
    """(Encrypted, KmsKeyId ARN) as AWS reports them: a named key encrypts;
    Encrypted without a key means the AWS-managed aws/redshift key."""
    if cluster.kms_key_id:
        return True, key_arn(cluster.kms_key_id, cluster.account_id, cluster.region)
    if cluster.encrypted:
        return True, default_key(cluster.account_id, cluster.region)
    return False, None


def _patch_models() -> None:
    cluster_init = Cluster.__init__
    snapshot_init = Snapshot.__init__

    def init_cluster(self: Cluster, *args: Any, **kwargs: Any) -> None:
        cluster_init(self, *args, **kwargs)
        self.encrypted, self.kms_key_id = _encryption_at_rest(self)
        self.manual_snapshot_retention_period = -1

    def init_snapshot(self: Snapshot, cluster: Any, *args: Any, **kwargs: Any) -> None:
        snapshot_init(self, cluster, *args, **kwargs)
        self.encrypted = bool(getattr(cluster, "encrypted", False))
        self.kms_key_id = getattr(cluster, "kms_key_id", None) if self.encrypted else None
        self.restore_accounts: list[str] = []
        self.manual_snapshot_retention_period = -1 if self.snapshot_type == "manual" else None
        self.source_region: str | None = None
        self.snapshot_retention_start_time = self.create_time
        self.sc_reads_left: int | None = None
        self.sc_copy_to: str | None = None  # destination region of a cross-region copy still to make

    Cluster.__init__ = init_cluster
    Snapshot.__init__ = init_snapshot
    # Response members moto's Snapshot does not have.
    Snapshot.owner_account = property(lambda self: self.account_id)
    Snapshot.snapshot_arn = property(lambda self: self.arn)
    Snapshot.snapshot_create_time = property(lambda self: self.create_time)
    Snapshot.accounts_with_restore_access = property(
        # "Returns null if no accounts are authorized."
        lambda self: [{"AccountId": a} for a in self.restore_accounts] or None
    )


class ForeignSnapshotView:
    """Another account's snapshot as the account it is shared with sees it.
    AccountsWithRestoreAccess is "visible only to the snapshot owner"; the
    owner's tags are not shown either (conservative, as for RDS)."""

    accounts_with_restore_access = None

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    @property
    def tags(self) -> list[dict[str, str]]:
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.snapshot, name)


def _underlying(item: Any) -> Snapshot:
    return item.snapshot if isinstance(item, ForeignSnapshotView) else item


# --- creating phase -------------------------------------------------------------

def mark_creating(snapshot: Snapshot, reads: int | None) -> None:
    """`creating` for `reads` describe responses (None: until further notice)
    and while its id matches a `stuck` pattern."""
    snapshot.status = "creating"
    snapshot.sc_reads_left = reads


def begin_creating(snapshot: Snapshot) -> None:
    reads = CONFIG.creating_reads
    if reads or CONFIG.is_stuck(snapshot.snapshot_identifier):
        mark_creating(snapshot, reads)


def _observe(snapshot: Snapshot) -> None:
    """A describe response is about to include this snapshot."""
    if snapshot.status != "creating" or CONFIG.is_stuck(snapshot.snapshot_identifier):
        return
    left = snapshot.sc_reads_left
    if left is None:
        return
    if left == 0:
        snapshot.status = "available"
    else:
        snapshot.sc_reads_left = left - 1


def _require_available(snapshot: Snapshot) -> None:
    if snapshot.status != "available":
        raise invalid_snapshot_state(
            f"Snapshot {snapshot.snapshot_identifier} is not in the available state (it is {snapshot.status})."
        )


# --- paging and filters ---------------------------------------------------------

def paginate(items: Iterable[Any], key: Callable[[Any], str], params: Any) -> tuple[list[Any], str | None]:
    """MaxRecords (default 100, 20..100) and an opaque Marker naming the last
    item returned, so a page boundary survives items added or deleted."""
    max_records = params.get("MaxRecords")
    if max_records is None:
        max_records = MAX_RECORDS_DEFAULT
    elif max_records not in MAX_RECORDS_RANGE:
        raise invalid_parameter(f"Invalid value {max_records} for MaxRecords. Must be between 20 and 100")
    ordered = sorted(items, key=key)
    marker = params.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_parameter(f"Invalid marker: {marker}") from None
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:max_records]
    if len(ordered) <= max_records:
        return page, None
    return page, base64.urlsafe_b64encode(key(page[-1]).encode()).decode()


def matches_tags(tags: list[dict[str, str]], keys: list[str] | None, values: list[str] | None) -> bool:
    """AWS's TagKeys/TagValues: a resource matches when one of its tags has one
    of the keys (if given) and one of the values (if given) - "any
    combination of the specified keys and values"."""
    return any((not keys or t["Key"] in keys) and (not values or t.get("Value", "") in values) for t in tags)


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _created(snapshot: Any) -> datetime:
    return snapshot.create_time.replace(tzinfo=timezone.utc)


# --- lookups --------------------------------------------------------------------

def existing_backend(account: str, region: str) -> RedshiftBackend | None:
    """The backend of an account and region if it was ever made (never makes one)."""
    regional = dict.get(redshift_backends, account)
    return dict.get(regional, region) if regional is not None else None


def own_snapshot(backend: RedshiftBackend, ident: str | None, cluster_ident: str | None = None) -> Snapshot:
    snapshot = backend.snapshots.get(ident or "")
    if snapshot is None or (cluster_ident and snapshot.cluster_identifier != cluster_ident):
        raise ClusterSnapshotNotFoundError(ident)
    return snapshot


def _split_snapshot_arn(arn: str) -> tuple[str, str, str, str]:
    """(region, account, cluster, snapshot id) of a snapshot ARN."""
    match = SNAPSHOT_ARN_RE.match(arn)
    if match is None:
        raise ClusterSnapshotNotFoundError(arn)
    region, account, cluster, ident = match.groups()
    return region, account, cluster, ident


def _addressed_snapshot(self: RedshiftResponse) -> Snapshot:
    """The caller's own snapshot an Authorize/Revoke/Delete call names, by
    SnapshotIdentifier or SnapshotArn (plus SnapshotClusterIdentifier)."""
    backend = self.redshift_backend
    params = self.params
    arn = params.get("SnapshotArn")
    if arn:
        region, account, cluster, ident = _split_snapshot_arn(arn)
        if (region, account) != (backend.region_name, backend.account_id):
            _refuse_foreign(account, region, ident, backend.account_id, self._get_action())
        return own_snapshot(backend, ident, cluster)
    return own_snapshot(backend, params.get("SnapshotIdentifier"), params.get("SnapshotClusterIdentifier"))


def _refuse_foreign(owner: str, region: str, ident: str, caller: str, action: str) -> None:
    """Only the owner may change who can access a snapshot. Revoking on a
    snapshot shared with the caller is AccessToSnapshotDenied; anything else
    the caller cannot see is not found."""
    other = existing_backend(owner, region)
    snapshot = other.snapshots.get(ident) if other is not None else None
    if snapshot is not None and caller in snapshot.restore_accounts and action == "RevokeSnapshotAccess":
        raise _fault("AccessToSnapshotDenied",
                     f"The owner of snapshot {ident} has not authorized your account to change its access.")
    raise ClusterSnapshotNotFoundError(ident)


def _visible_snapshots(backend: RedshiftBackend, owner: str) -> list[Any]:
    """What DescribeClusterSnapshots can show the caller for OwnerAccount=owner:
    its own snapshots, or the owner's snapshots (same region) it may restore."""
    if owner == backend.account_id:
        return list(backend.snapshots.values())
    other = existing_backend(owner, backend.region_name)
    if other is None:
        return []
    return [ForeignSnapshotView(s) for s in other.snapshots.values() if backend.account_id in s.restore_accounts]


# --- DescribeClusterSnapshots / DescribeClusters -------------------------------------

def _describe_cluster_snapshots(self: RedshiftResponse) -> ActionResult:
    params = self.params
    backend = self.redshift_backend
    snapshot_type = params.get("SnapshotType")
    if snapshot_type not in (None, "manual", "automated"):
        raise invalid_parameter(f"Invalid SnapshotType {snapshot_type}: valid values are automated | manual")
    owner = params.get("OwnerAccount") or backend.account_id
    ident = params.get("SnapshotIdentifier")
    arn = params.get("SnapshotArn")
    if arn:
        region, arn_owner, _, arn_ident = _split_snapshot_arn(arn)
        if region != backend.region_name or (ident and ident != arn_ident) or (
                params.get("OwnerAccount") and arn_owner != owner):
            raise ClusterSnapshotNotFoundError(arn)
        owner, ident = arn_owner, arn_ident
    items = _visible_snapshots(backend, owner)
    if ident:
        items = [s for s in items if s.snapshot_identifier == ident]
        if not items:
            raise ClusterSnapshotNotFoundError(ident)
    items = _filter_snapshots(items, params, shared=owner != backend.account_id)
    page, marker = paginate(items, lambda s: s.snapshot_identifier, params)
    for item in page:
        _observe(_underlying(item))
    return ActionResult({"Snapshots": page, "Marker": marker})


def _filter_snapshots(items: list[Any], params: Any, shared: bool) -> list[Any]:
    cluster = params.get("ClusterIdentifier")
    snapshot_type = params.get("SnapshotType")
    start, end = _aware(params.get("StartTime")), _aware(params.get("EndTime"))
    keys, values = params.get("TagKeys"), params.get("TagValues")
    if (keys or values) and shared:
        return []  # "shared snapshots are not returned with the tag key and tag value request parameters"
    return [
        s for s in items
        if (not cluster or s.cluster_identifier == cluster)
        and (not snapshot_type or s.snapshot_type == snapshot_type)
        and (start is None or _created(s) >= start)
        and (end is None or _created(s) <= end)
        and (not (keys or values) or matches_tags(s.tags, keys, values))
    ]


def _describe_clusters(self: RedshiftResponse) -> ActionResult:
    params = self.params
    ident = params.get("ClusterIdentifier")
    clusters = self.redshift_backend.describe_clusters(ident)
    keys, values = params.get("TagKeys"), params.get("TagValues")
    if keys or values:
        clusters = [c for c in clusters if matches_tags(c.tags, keys, values)]
    page, marker = paginate(clusters, lambda c: c.cluster_identifier, params)
    for cluster in page:
        restore_phase.observe(cluster)
    return ActionResult({"Clusters": page, "Marker": marker})


# --- CreateClusterSnapshot / CopyClusterSnapshot / DeleteClusterSnapshot -----------

def _create_cluster_snapshot(self: RedshiftResponse) -> ActionResult:
    params = self.params
    backend = self.redshift_backend
    ident = params.get("SnapshotIdentifier")
    cluster = backend.clusters.get(params.get("ClusterIdentifier") or "")
    if cluster is None:
        raise ClusterNotFoundError(params.get("ClusterIdentifier"))
    if ident in backend.snapshots:
        raise ClusterSnapshotAlreadyExistsError(ident)
    if cluster.status != "available":
        raise _fault("InvalidClusterState",
                     f"The cluster {cluster.cluster_identifier} is not in the available state (it is {cluster.status}).")
    retention = params.get("ManualSnapshotRetentionPeriod")
    retention = cluster.manual_snapshot_retention_period if retention is None else check_manual_retention(retention)
    snapshot = backend.create_cluster_snapshot(cluster.cluster_identifier, ident, backend.region_name,
                                               params.get("Tags") or [])
    snapshot.manual_snapshot_retention_period = retention
    begin_creating(snapshot)
    _schedule_region_copy(snapshot, cluster)
    return ActionResult({"Snapshot": snapshot})


def _copy_cluster_snapshot(self: RedshiftResponse) -> ActionResult:
    """Within the caller's account and region. The API reference: "The source
    must be an automated snapshot and it must be in the available state." The
    copy is manual, keeps the source's SnapshotCreateTime (the point in time
    its data is from) and encryption, and has no tags (there is no Tags
    parameter; the Management Guide says tags are not retained by copies to
    another region, and nothing that they are by copies within one)."""
    params = self.params
    backend = self.redshift_backend
    source = own_snapshot(backend, params.get("SourceSnapshotIdentifier"),
                          params.get("SourceSnapshotClusterIdentifier"))
    target = params.get("TargetSnapshotIdentifier")
    if source.snapshot_type != "automated":
        raise invalid_snapshot_state(
            f"Snapshot {source.snapshot_identifier} is a manual snapshot: only automated snapshots can be copied."
        )
    _require_available(source)
    if target in backend.snapshots:
        raise ClusterSnapshotAlreadyExistsError(target)
    retention = check_manual_retention(params.get("ManualSnapshotRetentionPeriod"))
    snapshot = copy_snapshot(source, target, backend.region_name, retention)
    backend.snapshots[target] = snapshot
    begin_creating(snapshot)
    cluster = backend.clusters.get(snapshot.cluster_identifier)
    if cluster is not None:
        _schedule_region_copy(snapshot, cluster)
    return ActionResult({"Snapshot": snapshot})


def copy_snapshot(source: Snapshot, ident: str, region: str, retention: int) -> Snapshot:
    """A manual copy of `source` in the same account: same cluster, data time
    and encryption; no tags, no shares; retention counted from now."""
    snapshot = copy.copy(source)
    snapshot.snapshot_identifier = ident
    snapshot.region = region
    snapshot.snapshot_type = "manual"
    snapshot.status = "available"
    snapshot.tags = []
    snapshot.restore_accounts = []
    snapshot.manual_snapshot_retention_period = retention
    snapshot.snapshot_retention_start_time = utcnow()
    snapshot.source_region = None
    snapshot.sc_reads_left = None
    snapshot.sc_copy_to = None
    return snapshot


def _delete_cluster_snapshot(self: RedshiftResponse) -> ActionResult:
    backend = self.redshift_backend
    snapshot = own_snapshot(backend, self.params.get("SnapshotIdentifier"),
                            self.params.get("SnapshotClusterIdentifier"))
    ident = snapshot.snapshot_identifier
    if snapshot.snapshot_type == "automated":
        raise invalid_snapshot_state(
            f"Cannot delete the snapshot {ident} because only manual snapshots may be deleted"
        )
    if snapshot.status == "creating":
        raise invalid_snapshot_state(
            f"Cannot delete the snapshot {ident} because it is not in the available, failed or cancelled state."
        )
    if snapshot.restore_accounts:
        raise invalid_snapshot_state(
            f"Cannot delete the snapshot {ident} because other accounts are authorized to access it. "
            "Revoke all authorizations before deleting the snapshot."
        )
    del backend.snapshots[ident]
    snapshot.status = "deleted"
    return ActionResult({"Snapshot": snapshot})


# --- AuthorizeSnapshotAccess / RevokeSnapshotAccess ---------------------------------

def _grantee(self: RedshiftResponse) -> str:
    account = self.params.get("AccountWithRestoreAccess") or ""
    if not (ACCOUNT_RE.match(account) or account == SUPPORT_ACCOUNT):
        raise invalid_parameter(f"Invalid AccountWithRestoreAccess {account!r}: an AWS account id is required.")
    if account == self.redshift_backend.account_id:
        raise invalid_parameter(f"Account {account} owns the snapshot and always has access to it.")
    return account


def _authorize_snapshot_access(self: RedshiftResponse) -> ActionResult:
    snapshot = _addressed_snapshot(self)
    account = _grantee(self)
    if snapshot.snapshot_type != "manual":
        raise invalid_snapshot_state(
            f"Snapshot {snapshot.snapshot_identifier} is an automated snapshot: only manual snapshots can be shared."
        )
    _require_available(snapshot)
    if account in snapshot.restore_accounts:
        raise _fault("AuthorizationAlreadyExists",
                     f"Account {account} is already authorized to restore snapshot {snapshot.snapshot_identifier}.")
    if len(snapshot.restore_accounts) >= MAX_SHARED_ACCOUNTS:
        raise _fault("AuthorizationQuotaExceeded",
                     f"Snapshot {snapshot.snapshot_identifier} is already shared with "
                     f"{MAX_SHARED_ACCOUNTS} accounts, the most a snapshot can be shared with.")
    snapshot.restore_accounts.append(account)
    return ActionResult({"Snapshot": snapshot})


def _revoke_snapshot_access(self: RedshiftResponse) -> ActionResult:
    snapshot = _addressed_snapshot(self)
    account = self.params.get("AccountWithRestoreAccess") or ""
    if account not in snapshot.restore_accounts:
        raise _fault("AuthorizationNotFound",
                     f"Account {account} is not authorized to restore snapshot {snapshot.snapshot_identifier}.")
    snapshot.restore_accounts.remove(account)
    return ActionResult({"Snapshot": snapshot})


# --- snapshot copy grants ----------------------------------------------------------

def _create_snapshot_copy_grant(self: RedshiftResponse) -> ActionResult:
    params = self.params
    backend = self.redshift_backend
    name = params.get("SnapshotCopyGrantName")
    if name in backend.snapshot_copy_grants:
        raise SnapshotCopyGrantAlreadyExistsFaultError(name)
    key_ref = params.get("KmsKeyId")
    if key_ref:  # "If no key is specified, the default key is used."
        key = kms_keys.find_key(key_ref, backend.account_id, backend.region_name)
        if key is None:
            raise invalid_parameter(f"KMS key {key_ref} not found in {backend.region_name}.")
        arn = key.arn
    else:
        arn = default_key(backend.account_id, backend.region_name)
    grant = SnapshotCopyGrant(name, arn)
    grant.tags = params.get("Tags") or []
    backend.snapshot_copy_grants[name] = grant
    return ActionResult({"SnapshotCopyGrant": grant})


def _describe_snapshot_copy_grants(self: RedshiftResponse) -> ActionResult:
    params = self.params
    grants = self.redshift_backend.describe_snapshot_copy_grants(
        snapshot_copy_grant_name=params.get("SnapshotCopyGrantName"))
    keys, values = params.get("TagKeys"), params.get("TagValues")
    if keys or values:
        grants = [g for g in grants if matches_tags(getattr(g, "tags", []), keys, values)]
    page, marker = paginate(grants, lambda g: g.snapshot_copy_grant_name, params)
    return ActionResult({"SnapshotCopyGrants": page, "Marker": marker})


def _delete_snapshot_copy_grant(self: RedshiftResponse) -> EmptyResult:
    backend = self.redshift_backend
    name = self.params.get("SnapshotCopyGrantName")
    if name not in backend.snapshot_copy_grants:
        raise SnapshotCopyGrantNotFoundFaultError(name)
    users = sorted(c.cluster_identifier for c in _clusters_copying_with(backend.account_id, backend.region_name, name))
    if users:
        raise _fault("InvalidSnapshotCopyGrantStateFault",
                     f"The snapshot copy grant {name} can't be deleted because it is used by clusters {users}.")
    del backend.snapshot_copy_grants[name]
    return EmptyResult()


def _clusters_copying_with(account: str, destination: str, grant: str) -> list[Cluster]:
    regional = dict.get(redshift_backends, account) or {}
    return [
        cluster for backend in list(regional.values()) for cluster in backend.clusters.values()
        if (status := cluster.cluster_snapshot_copy_status)
        and status["DestinationRegion"] == destination and status.get("SnapshotCopyGrantName") == grant
    ]


# --- EnableSnapshotCopy / DisableSnapshotCopy ------------------------------------------

def _cluster(self: RedshiftResponse) -> Cluster:
    ident = self.params.get("ClusterIdentifier")
    cluster = self.redshift_backend.clusters.get(ident or "")
    if cluster is None:
        raise ClusterNotFoundError(ident)
    return cluster


def _enable_snapshot_copy(self: RedshiftResponse) -> ActionResult:
    params = self.params
    backend = self.redshift_backend
    cluster = _cluster(self)
    if cluster.cluster_snapshot_copy_status is not None:
        raise SnapshotCopyAlreadyEnabledFaultError(cluster.cluster_identifier)
    destination = params.get("DestinationRegion") or ""
    if destination == backend.region_name or destination not in redshift_backends[backend.account_id].regions:
        raise UnknownSnapshotCopyRegionFaultError(f"Invalid region {destination}")
    retention = params.get("RetentionPeriod")
    retention = 7 if retention is None else retention
    if not isinstance(retention, int) or not 1 <= retention <= 35:
        raise invalid_retention(retention)
    manual_retention = check_manual_retention(params.get("ManualSnapshotRetentionPeriod"))
    grant = params.get("SnapshotCopyGrantName")
    if cluster.encrypted and not grant:
        raise invalid_parameter("SnapshotCopyGrantName is required for Snapshot Copy on KMS encrypted clusters.")
    if grant and grant not in redshift_backends[backend.account_id][destination].snapshot_copy_grants:
        raise SnapshotCopyGrantNotFoundFaultError(grant)
    cluster.cluster_snapshot_copy_status = {
        "DestinationRegion": destination,
        "RetentionPeriod": retention,
        "ManualSnapshotRetentionPeriod": manual_retention,
        "SnapshotCopyGrantName": grant,
    }
    return ActionResult({"Cluster": cluster})


def _disable_snapshot_copy(self: RedshiftResponse) -> ActionResult:
    cluster = _cluster(self)
    if cluster.cluster_snapshot_copy_status is None:
        raise SnapshotCopyAlreadyDisabledFaultError(cluster.cluster_identifier)
    cluster.cluster_snapshot_copy_status = None
    return ActionResult({"Cluster": cluster})


# --- the cross-region copy ---------------------------------------------------------------

def _schedule_region_copy(snapshot: Snapshot, cluster: Cluster) -> None:
    """A manual snapshot made while its cluster copies snapshots to another
    region: copy it there once it is available."""
    status = cluster.cluster_snapshot_copy_status
    if status is not None and snapshot.snapshot_type == "manual":
        snapshot.sc_copy_to = status["DestinationRegion"]


def replicate_pending(account: str) -> None:
    """Make the cross-region copies due in one account: every scheduled
    snapshot that is now available, in (region, id) order. A copy is made only
    if the cluster still copies to that region; an id already taken there
    makes no copy (the copy fails)."""
    regional = dict.get(redshift_backends, account) or {}
    due = sorted(
        ((backend.region_name, s.snapshot_identifier, backend, s)
         for backend in list(regional.values()) for s in backend.snapshots.values()
         if s.sc_copy_to and s.status == "available"),
        key=lambda entry: entry[:2],
    )
    for _, _, backend, snapshot in due:
        destination, snapshot.sc_copy_to = snapshot.sc_copy_to, None
        cluster = backend.clusters.get(snapshot.cluster_identifier)
        status = cluster.cluster_snapshot_copy_status if cluster is not None else None
        if status is None or status["DestinationRegion"] != destination:
            continue
        _copy_to_region(snapshot, redshift_backends[account][destination], status)


def _copy_to_region(source: Snapshot, target: RedshiftBackend, status: dict[str, Any]) -> None:
    if source.snapshot_identifier in target.snapshots:
        return
    key = None
    if source.encrypted:
        grant = target.snapshot_copy_grants.get(status.get("SnapshotCopyGrantName") or "")
        if grant is None:
            return
        key = grant.kms_key_id
    snapshot = copy_snapshot(source, source.snapshot_identifier, target.region_name,
                             status["ManualSnapshotRetentionPeriod"])
    snapshot.kms_key_id = key
    snapshot.source_region = source.region
    target.snapshots[snapshot.snapshot_identifier] = snapshot
    begin_creating(snapshot)


# --- RestoreFromClusterSnapshot / DeleteCluster ------------------------------------------

# The ClusterStatus of a cluster whose restore could not complete.
RESTORE_FAILED = "incompatible-restore"
# RestoreStatus.Status ("starting, restoring, completed, or failed") by ClusterStatus.
RESTORE_STATUS = {restore_phase.CREATING: "restoring", RESTORE_FAILED: "failed"}


def _restore_source(self: RedshiftResponse) -> Snapshot:
    """The snapshot RestoreFromClusterSnapshot names, by SnapshotIdentifier or
    SnapshotArn ("You must specify this parameter or snapshotIdentifier, but not
    both"), in the caller's region: its own, or another account's when
    OwnerAccount ("Required if you are restoring a snapshot you do not own") or
    the ARN names that account. Missing: ClusterSnapshotNotFound; another
    account's that does not authorize the caller: AccessToSnapshotDenied ("The
    owner of the specified snapshot has not authorized your account to access
    the snapshot"); not available: InvalidClusterSnapshotState."""
    params = self.params
    backend = self.redshift_backend
    ident, arn = params.get("SnapshotIdentifier"), params.get("SnapshotArn")
    if bool(ident) == bool(arn):
        raise InvalidParameterCombinationError("Specify either SnapshotIdentifier or SnapshotArn, but not both.")
    owner = params.get("OwnerAccount") or backend.account_id
    cluster_ident = params.get("SnapshotClusterIdentifier")
    if arn:
        region, arn_owner, arn_cluster, ident = _split_snapshot_arn(arn)
        if region != backend.region_name or (params.get("OwnerAccount") or arn_owner) != arn_owner or (
                cluster_ident or arn_cluster) != arn_cluster:
            raise ClusterSnapshotNotFoundError(arn)
        owner, cluster_ident = arn_owner, arn_cluster
    if owner == backend.account_id:
        snapshot = own_snapshot(backend, ident, cluster_ident)
    else:
        snapshot = _authorized_snapshot(backend, owner, ident or "", cluster_ident)
    _require_available(snapshot)
    return snapshot


def _authorized_snapshot(backend: RedshiftBackend, owner: str, ident: str, cluster_ident: str | None) -> Snapshot:
    other = existing_backend(owner, backend.region_name)
    snapshot = other.snapshots.get(ident) if other is not None else None
    if snapshot is None or (cluster_ident and snapshot.cluster_identifier != cluster_ident):
        raise ClusterSnapshotNotFoundError(ident)
    if backend.account_id not in snapshot.restore_accounts:
        raise _fault("AccessToSnapshotDenied",
                     f"The owner of snapshot {ident} has not authorized your account to access the snapshot.")
    return snapshot


def _restored_encryption(params: Any, snapshot: Snapshot, backend: RedshiftBackend) -> tuple[bool, str | None]:
    """(Encrypted, key): KmsKeyId (a key of the caller's region by id, alias or
    ARN) encrypts the cluster with that key ("the restored cluster is encrypted
    with the new KMS key ID"); otherwise it is encrypted as the snapshot is,
    with the snapshot's key (the owner's, for a shared snapshot: KMS key
    policies are not modelled)."""
    key_ref = params.get("KmsKeyId")
    if key_ref:
        key = kms_keys.find_key(key_ref, backend.account_id, backend.region_name)
        if key is None:
            raise invalid_parameter(f"KMS key {key_ref} not found in {backend.region_name}.")
        return True, key.arn
    encrypted = bool(snapshot.encrypted) or bool(params.get("Encrypted"))
    return encrypted, snapshot.kms_key_id if snapshot.encrypted else None


def _restore_kwargs(params: Any, snapshot: Snapshot, backend: RedshiftBackend) -> dict[str, Any]:
    """Cluster arguments: the snapshot's cluster configuration (as moto restores
    it), the request's node type, networking and maintenance settings, default
    parameter and security groups, no tags (the API has no Tags parameter: tag
    with CreateTags)."""
    nodes = params.get("NumberOfNodes") or snapshot.number_of_nodes
    encrypted, key = _restored_encryption(params, snapshot, backend)
    enhanced = params.get("EnhancedVpcRouting")
    return {
        "cluster_identifier": params.get("ClusterIdentifier"),
        "node_type": params.get("NodeType") or snapshot.node_type,
        "master_username": snapshot.master_username, "master_user_password": snapshot.master_user_password,
        "db_name": snapshot.db_name, "cluster_type": "multi-node" if nodes > 1 else "single-node",
        "number_of_nodes": nodes, "availability_zone": params.get("AvailabilityZone") or snapshot.availability_zone,
        "port": params.get("Port") or snapshot.port, "cluster_version": snapshot.cluster_version,
        "allow_version_upgrade": params.get("AllowVersionUpgrade") is not False,
        "cluster_subnet_group_name": params.get("ClusterSubnetGroupName"),
        "publicly_accessible": bool(params.get("PubliclyAccessible")),
        "cluster_parameter_group_name": params.get("ClusterParameterGroupName"),
        "cluster_security_groups": params.get("ClusterSecurityGroups") or [],
        "vpc_security_group_ids": params.get("VpcSecurityGroupIds") or [],
        "preferred_maintenance_window": params.get("PreferredMaintenanceWindow"),
        "automated_snapshot_retention_period": params.get("AutomatedSnapshotRetentionPeriod"),
        "region_name": backend.region_name, "iam_roles_arn": params.get("IamRoles") or [],
        "enhanced_vpc_routing": snapshot.enhanced_vpc_routing if enhanced is None else enhanced,
        "encrypted": encrypted, "kms_key_id": key, "tags": [], "restored_from_snapshot": True,
    }


def _restore_from_cluster_snapshot(self: RedshiftResponse) -> ActionResult:
    """A new cluster of the caller's account and region from a snapshot (see
    _restore_source). It answers "creating" and goes through its restore phase;
    a taken ClusterIdentifier is ClusterAlreadyExists, an unknown
    ClusterSubnetGroupName ClusterSubnetGroupNotFoundFault. Stock moto restored
    own snapshots by identifier only and copied the snapshot's tags."""
    params = self.params
    backend = self.redshift_backend
    ident = params.get("ClusterIdentifier") or ""
    if ident in backend.clusters:
        raise ClusterAlreadyExistsFaultError()
    snapshot = _restore_source(self)
    subnet_group = params.get("ClusterSubnetGroupName")
    if subnet_group and subnet_group not in backend.subnet_groups:
        raise ClusterSubnetGroupNotFoundError(subnet_group)
    retention = check_manual_retention(params.get("ManualSnapshotRetentionPeriod"))
    cluster = backend.create_cluster(**_restore_kwargs(params, snapshot, backend))
    cluster.manual_snapshot_retention_period = retention
    restore_phase.begin(cluster, ident, RESTORE_FAILED)
    return ActionResult({"Cluster": cluster})


def _delete_cluster(self: RedshiftResponse) -> ActionResult:
    """Deletes at once, in any status (the answer says "deleting"). "The
    FinalClusterSnapshotIdentifier parameter must be specified if
    SkipFinalClusterSnapshot is false" (its default), and not with true; a final
    snapshot needs the cluster available. The cluster's automated snapshots
    go with it; stock moto could take every automated snapshot of the account
    with a cluster that had none."""
    params = self.params
    backend = self.redshift_backend
    cluster = _cluster(self)
    skip = bool(params.get("SkipFinalClusterSnapshot"))
    final = params.get("FinalClusterSnapshotIdentifier")
    if skip and final:
        raise InvalidParameterCombinationError(
            "FinalClusterSnapshotIdentifier cannot be specified when SkipFinalClusterSnapshot is true."
        )
    if not skip and not final:
        raise InvalidParameterCombinationError(  # moto's message
            "FinalClusterSnapshotIdentifier is required unless SkipFinalClusterSnapshot is specified."
        )
    ident = cluster.cluster_identifier
    if final:
        _final_snapshot(backend, cluster, final, params.get("FinalClusterSnapshotRetentionPeriod"))
    for snapshot_id in [s.snapshot_identifier for s in backend.snapshots.values()
                        if s.cluster_identifier == ident and s.snapshot_type == "automated"]:
        del backend.snapshots[snapshot_id]
    del backend.clusters[ident]
    cluster.status = "deleting"
    return ActionResult({"Cluster": cluster})


def _final_snapshot(backend: RedshiftBackend, cluster: Cluster, ident: str, retention: Any) -> None:
    """DeleteCluster's final snapshot: manual, with the cluster's tags, of an available cluster."""
    if cluster.status != "available":
        raise _fault("InvalidClusterState", f"The cluster {cluster.cluster_identifier} is not in the available "
                                            f"state (it is {cluster.status}).")
    if ident in backend.snapshots:
        raise ClusterSnapshotAlreadyExistsError(ident)
    period = check_manual_retention(retention)
    snapshot = backend.create_cluster_snapshot(cluster.cluster_identifier, ident, backend.region_name, cluster.tags)
    snapshot.manual_snapshot_retention_period = period


def _patch_restore_status() -> None:
    """RestoreStatus.Status follows the restore phase (moto: always completed)."""
    stock = Cluster.restore_status

    def restore_status(self: Cluster) -> dict[str, Any] | None:
        status = stock.fget(self)
        if status is not None:
            status["Status"] = RESTORE_STATUS.get(self.status, "completed")
        return status

    Cluster.restore_status = property(restore_status)


def _patch_tag_lookup() -> None:
    """CreateTags, DeleteTags and DescribeTags name a resource by ARN; stock
    moto looked it up in the caller's account and region whatever the ARN
    said. Another account's or region's resource is ResourceNotFoundFault."""
    stock = RedshiftBackend._get_resource_from_arn

    def get_resource(self: RedshiftBackend, arn: str) -> Any:
        parts = arn.split(":")
        if len(parts) >= 6 and parts[0] == "arn" and (parts[3], parts[4]) != (self.region_name, self.account_id):
            raise ResourceNotFoundFaultError(message=f"Resource {arn} not found.")
        return stock(self, arn)

    RedshiftBackend._get_resource_from_arn = get_resource


# --- automated snapshot names ------------------------------------------------------------

def _patch_automated_names() -> None:
    """moto names the automated snapshot it makes with a new cluster
    rs:<cluster>-<yyyy-mm-dd-hh-mm>; AWS adds the seconds."""
    stock = RedshiftBackend.create_cluster

    def create_cluster(self: RedshiftBackend, **kwargs: Any) -> Cluster:
        before = set(self.snapshots)
        cluster = stock(self, **kwargs)
        for ident in [i for i in self.snapshots if i not in before]:
            snapshot = self.snapshots.pop(ident)
            snapshot.snapshot_identifier = automated_id(cluster.cluster_identifier, snapshot.create_time)
            self.snapshots[snapshot.snapshot_identifier] = snapshot
        return cluster

    RedshiftBackend.create_cluster = create_cluster


def _patch_dispatch() -> None:
    """Due cross-region copies are made before any request of their account."""
    stock = RedshiftResponse.call_action

    def call_action(self: RedshiftResponse) -> Any:
        replicate_pending(self.current_account)
        return stock(self)

    RedshiftResponse.call_action = call_action


def install() -> None:
    _patch_models()
    _patch_automated_names()
    _patch_dispatch()
    _patch_restore_status()
    _patch_tag_lookup()
    r = RedshiftResponse
    r.restore_from_cluster_snapshot = _restore_from_cluster_snapshot
    r.delete_cluster = _delete_cluster
    r.describe_clusters = _describe_clusters
    r.describe_cluster_snapshots = _describe_cluster_snapshots
    r.create_cluster_snapshot = _create_cluster_snapshot
    r.copy_cluster_snapshot = _copy_cluster_snapshot
    r.delete_cluster_snapshot = _delete_cluster_snapshot
    r.authorize_snapshot_access = _authorize_snapshot_access
    r.revoke_snapshot_access = _revoke_snapshot_access
    r.create_snapshot_copy_grant = _create_snapshot_copy_grant
    r.describe_snapshot_copy_grants = _describe_snapshot_copy_grants
    r.delete_snapshot_copy_grant = _delete_snapshot_copy_grant
    r.enable_snapshot_copy = _enable_snapshot_copy
    r.disable_snapshot_copy = _disable_snapshot_copy
