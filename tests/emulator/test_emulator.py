"""Checks of the snapcourier emulator through boto3, as the product sees it.

Run: cd tests/emulator && ../../.venv/bin/python -m unittest -v test_emulator

One emulator (seed "demo") serves the whole module; each test uses its own
snapshot ids (and state machine names), and the runtime config is reset after
every test. The lifeline tests start emulators of their own. Step Functions
and Lambda routing tests invoke a stand-in for `cargo lambda watch` served by
the test itself; SNAPCOURIER_CARGO_LAMBDA=1 adds a smoke test with the real one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOURCE, DEST = "111111111111", "222222222222"
DEFAULT_CONFIG = {"creating_reads": 0, "stuck": [], "restore_reads": 0, "restore_failures": [],
                  "throttle_rate": 0.0, "throttle_seed": 0,
                  "throttle_services": ["rds"], "latency_ms": 0,
                  "latency_services": ["rds", "redshift", "kms"], "deny": [],
                  "manual_snapshot_quotas": {"ManualClusterSnapshots": 100000, "ManualSnapshots": 100000}}
# One attempt per call: throttling and error tests must see every answer.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def start_emulator(state_file: Path, *extra: str, seed: str = "demo") -> tuple[subprocess.Popen[str], float]:
    """Start an emulator and wait for its "ready" line; returns it and the
    seconds from process start to ready."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "snapcourier_emulator", "serve", "--state-file", str(state_file),
         "--seed", seed, *extra],
        cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, time.monotonic() - started


STATE: dict[str, Any] = {}
EMULATOR: subprocess.Popen[str] | None = None
TMP = tempfile.TemporaryDirectory()


def setUpModule() -> None:
    global EMULATOR
    EMULATOR, startup = start_emulator(Path(TMP.name) / "state.json", "--stdin-lifeline",
                                       "--watch-pid", str(os.getpid()))
    STATE.update(json.loads((Path(TMP.name) / "state.json").read_text()))
    print(f"\nemulator ready in {startup:.2f}s at {STATE['endpoint']}", file=sys.stderr)


def tearDownModule() -> None:
    assert EMULATOR is not None
    EMULATOR.stdin.close()  # the lifeline: the emulator exits on EOF
    EMULATOR.wait(10)
    TMP.cleanup()


def control(path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(STATE["endpoint"] + path, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def control_error(path: str, body: Any) -> tuple[int, str]:
    try:
        control(path, body)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["error"]
    raise AssertionError(f"{path} accepted {body!r}")


def client(role: str, service: str = "rds", region: str = "us-east-1") -> Any:
    account = STATE["accounts"][role]
    return boto3.client(service, region_name=region, endpoint_url=STATE["endpoint"], config=NO_RETRIES,
                        aws_access_key_id=account["access_key_id"],
                        aws_secret_access_key=account["secret_access_key"])


def stranger(region: str = "us-east-1") -> Any:
    """An RDS client of a third account that nothing is shared with."""
    rds = boto3.client("rds", region_name=region, endpoint_url=STATE["endpoint"], config=NO_RETRIES,
                       aws_access_key_id="AKIAEXAMPLE333333333", aws_secret_access_key="x")
    rds.meta.events.register("before-sign.rds.*", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", "333333333333"))
    return rds


def cmk(account: str, region: str = "us-east-1") -> str:
    return STATE["kms_keys"][account][region]


def cluster_snapshot(rds: Any, ident: str) -> dict[str, Any]:
    return rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=ident)["DBClusterSnapshots"][0]


class EmulatorTest(unittest.TestCase):
    def setUp(self) -> None:
        self.src = client("source")
        self.dst = client("destination")

    def tearDown(self) -> None:
        control("/snapcourier/config", DEFAULT_CONFIG)

    def assertError(self, code: str, call: Any, *args: Any, **kwargs: Any) -> ClientError:
        with self.assertRaises(ClientError) as caught:
            call(*args, **kwargs)
        self.assertEqual(caught.exception.response["Error"]["Code"], code, caught.exception)
        return caught.exception

    def share(self, ident: str, account: str = DEST, rds: Any = None) -> None:
        (rds or self.src).modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier=ident, AttributeName="restore", ValuesToAdd=[account])


class StateFileTest(EmulatorTest):
    def test_contract(self) -> None:
        self.assertEqual(STATE["pid"], EMULATOR.pid)
        self.assertEqual(STATE["regions"], ["us-east-1", "eu-west-1"])
        self.assertEqual({r: a["account_id"] for r, a in STATE["accounts"].items()},
                         {"source": SOURCE, "destination": DEST})
        self.assertEqual(cmk(SOURCE, "eu-west-1"),
                         "arn:aws:kms:eu-west-1:111111111111:key/00000002-0000-4000-8000-111111111111")
        self.assertEqual(STATE["default_rds_keys"][DEST]["us-east-1"],
                         "arn:aws:kms:us-east-1:222222222222:key/00000101-0000-4000-8000-222222222222")

    def test_profiles_reach_their_accounts(self) -> None:
        os.environ["AWS_CONFIG_FILE"] = STATE["aws_config_file"]
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = STATE["aws_credentials_file"]
        try:
            for profile, account in [("snapcourier-source", SOURCE), ("snapcourier-destination", DEST)]:
                sts = boto3.Session(profile_name=profile).client("sts")
                self.assertEqual(sts.get_caller_identity()["Account"], account)
        finally:
            del os.environ["AWS_CONFIG_FILE"], os.environ["AWS_SHARED_CREDENTIALS_FILE"]

    def test_kms_keys(self) -> None:
        for role, account in [("source", SOURCE), ("destination", DEST)]:
            for region, number in [("us-east-1", 1), ("eu-west-1", 2)]:
                kms = client(role, "kms", region)
                key = kms.describe_key(KeyId="alias/snapcourier")["KeyMetadata"]
                self.assertEqual(key["KeyId"], f"{number:08x}-0000-4000-8000-{account}")
                self.assertEqual(key["KeyManager"], "CUSTOMER")
                default = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
                self.assertEqual(default["KeyId"], f"{0x100 + number:08x}-0000-4000-8000-{account}")
                self.assertEqual(default["KeyManager"], "AWS")


class SeedTest(EmulatorTest):
    def test_demo_clusters(self) -> None:
        clusters = {c["DBClusterIdentifier"]: c for c in self.src.describe_db_clusters()["DBClusters"]}
        self.assertLessEqual({"orders-db", "billing-db", "analytics-db", "scratch-tmp"}, set(clusters))
        self.assertEqual(clusters["orders-db"]["Engine"], "aurora-postgresql")
        self.assertEqual(clusters["billing-db"]["Engine"], "aurora-mysql")
        for name in ("orders-db", "billing-db"):
            self.assertTrue(clusters[name]["StorageEncrypted"])
            self.assertEqual(clusters[name]["KmsKeyId"], cmk(SOURCE))
        for name in ("analytics-db", "scratch-tmp"):
            self.assertFalse(clusters[name]["StorageEncrypted"])
            self.assertNotIn("KmsKeyId", clusters[name])

    def test_unowned_snapshots(self) -> None:
        before = cluster_snapshot(self.src, "orders-db-before-migration")
        self.assertEqual(before["DBClusterIdentifier"], "orders-db")
        self.assertEqual(before["TagList"], [])
        self.assertEqual(before["Status"], "available")
        self.assertEqual(before["KmsKeyId"], cmk(SOURCE))
        other = cluster_snapshot(self.src, "billing-db-other-team")
        self.assertEqual(other["TagList"], [{"Key": "snapcourier:namespace", "Value": "otherteam"}])
        keep = cluster_snapshot(client("destination", region="eu-west-1"), "dest-unowned-keep")
        self.assertEqual(keep["SnapshotType"], "manual")
        self.assertLess(keep["SnapshotCreateTime"], datetime.now(timezone.utc) - timedelta(days=30))


class InstanceOptionGroupAndLimitTest(EmulatorTest):
    def test_demo_instances_and_warehouses(self) -> None:
        instances = {i["DBInstanceIdentifier"]: i for i in self.src.describe_db_instances()["DBInstances"]}
        self.assertLessEqual({"orders-mysql", "billing-pg", "inventory-pg", "orders-replica"}, set(instances))
        self.assertEqual(instances["orders-mysql"]["OptionGroupMemberships"][0]["OptionGroupName"], "app-opts")
        self.assertEqual(instances["orders-replica"]["ReadReplicaSourceDBInstanceIdentifier"], "orders-mysql")
        self.assertTrue(instances["orders-mysql"]["StorageEncrypted"])
        self.assertFalse(instances["billing-pg"]["StorageEncrypted"])
        warehouses = {c["ClusterIdentifier"]: c for c in client("source", "redshift").describe_clusters()["Clusters"]}
        self.assertTrue(warehouses["warehouse-main"]["Encrypted"])
        self.assertFalse(warehouses["warehouse-raw"]["Encrypted"])

    def test_copies_map_the_option_group_or_take_the_regional_default(self) -> None:
        self.src.create_db_snapshot(DBInstanceIdentifier="orders-mysql", DBSnapshotIdentifier="og-orders")
        snap = self.src.describe_db_snapshots(DBSnapshotIdentifier="og-orders")["DBSnapshots"][0]
        self.assertEqual(snap["OptionGroupName"], "app-opts")
        self.src.modify_db_snapshot_attribute(DBSnapshotIdentifier="og-orders", AttributeName="restore",
                                              ValuesToAdd=[DEST])
        # Same region, other account: the copy keeps the snapshot's group.
        self.dst.copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshotArn"], TargetDBSnapshotIdentifier="og-in",
                                  KmsKeyId=cmk(DEST))
        copy = self.dst.describe_db_snapshots(DBSnapshotIdentifier="og-in")["DBSnapshots"][0]
        self.assertEqual(copy["OptionGroupName"], "app-opts")
        eu = client("destination", region="eu-west-1")
        eu.copy_db_snapshot(SourceDBSnapshotIdentifier=copy["DBSnapshotArn"], TargetDBSnapshotIdentifier="og-mapped",
                            KmsKeyId=cmk(DEST, "eu-west-1"), OptionGroupName="app-opts-eu")
        eu.copy_db_snapshot(SourceDBSnapshotIdentifier=copy["DBSnapshotArn"], TargetDBSnapshotIdentifier="og-default",
                            KmsKeyId=cmk(DEST, "eu-west-1"))
        group = {i: eu.describe_db_snapshots(DBSnapshotIdentifier=i)["DBSnapshots"][0]["OptionGroupName"]
                 for i in ("og-mapped", "og-default")}
        self.assertEqual(group, {"og-mapped": "app-opts-eu", "og-default": "default:mysql-8-0"})
        self.assertError("OptionGroupNotFoundFault", eu.copy_db_snapshot,
                         SourceDBSnapshotIdentifier=copy["DBSnapshotArn"], TargetDBSnapshotIdentifier="og-missing",
                         KmsKeyId=cmk(DEST, "eu-west-1"), OptionGroupName="no-such-group")
        # Leave the shared regions as they were (other tests count snapshots there).
        for rds, ident in [(eu, "og-mapped"), (eu, "og-default"), (self.dst, "og-in"), (self.src, "og-orders")]:
            rds.delete_db_snapshot(DBSnapshotIdentifier=ident)

    def test_copies_in_progress_are_limited_per_kind(self) -> None:
        self.src.create_db_snapshot(DBInstanceIdentifier="billing-pg", DBSnapshotIdentifier="limit-src")
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="analytics-db",
                                            DBClusterSnapshotIdentifier="climit-src")
        control("/snapcourier/config", {"creating_reads": 3})
        control("/snapcourier/requests/reset", {})
        eu = client("source", region="eu-west-1")
        arn = f"arn:aws:rds:us-east-1:{SOURCE}:snapshot:limit-src"
        for i in range(20):
            eu.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=f"limit-{i}")
        self.assertError("SnapshotQuotaExceeded", eu.copy_db_snapshot, SourceDBSnapshotIdentifier=arn,
                         TargetDBSnapshotIdentifier="limit-20")
        carn = f"arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:climit-src"
        for i in range(5):
            eu.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=carn,
                                        TargetDBClusterSnapshotIdentifier=f"climit-{i}")
        self.assertError("SnapshotQuotaExceeded", eu.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=carn, TargetDBClusterSnapshotIdentifier="climit-5")
        # What a test of the product reads: the most copies in flight, and the refusals.
        copies = control("/snapcourier/requests")["copies"]
        self.assertEqual(copies["peak_in_flight"], {f"{SOURCE}/eu-west-1/DBSnapshot": 20,
                                                    f"{SOURCE}/eu-west-1/DBClusterSnapshot": 5})
        self.assertEqual(copies["refused"], {f"{SOURCE}/eu-west-1/DBSnapshot": 1,
                                             f"{SOURCE}/eu-west-1/DBClusterSnapshot": 1})
        # Finished copies free their slots; then leave the regions as they were.
        for _ in range(4):
            eu.describe_db_snapshots(SnapshotType="manual")
            eu.describe_db_cluster_snapshots(SnapshotType="manual")
        eu.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=carn,
                                    TargetDBClusterSnapshotIdentifier="climit-5")
        for _ in range(4):
            eu.describe_db_cluster_snapshots(SnapshotType="manual")
        for i in range(20):
            eu.delete_db_snapshot(DBSnapshotIdentifier=f"limit-{i}")
        for i in range(6):
            eu.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"climit-{i}")
        self.src.delete_db_snapshot(DBSnapshotIdentifier="limit-src")
        self.src.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="climit-src")

    def test_manual_snapshot_quotas_are_reported_and_enforced(self) -> None:
        def quotas(c: Any) -> dict[str, tuple[int, int]]:
            out = c.describe_account_attributes()["AccountQuotas"]
            return {q["AccountQuotaName"]: (q["Used"], q["Max"]) for q in out}

        eu = client("source", region="eu-west-1")
        self.src.create_db_snapshot(DBInstanceIdentifier="billing-pg", DBSnapshotIdentifier="quota-src")
        before = quotas(eu)
        self.assertEqual(before["ManualClusterSnapshots"][1], 100000)
        used = before["ManualSnapshots"][0]
        # The quota is per account and region: one more snapshot fits in eu-west-1.
        control("/snapcourier/config", {"manual_snapshot_quotas": {"ManualClusterSnapshots": 100000,
                                                                    "ManualSnapshots": used + 1}})
        try:
            arn = f"arn:aws:rds:us-east-1:{SOURCE}:snapshot:quota-src"
            eu.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="quota-1")
            self.assertEqual(quotas(eu)["ManualSnapshots"], (used + 1, used + 1))
            self.assertError("SnapshotQuotaExceeded", eu.copy_db_snapshot, SourceDBSnapshotIdentifier=arn,
                             TargetDBSnapshotIdentifier="quota-2")
        finally:
            control("/snapcourier/config", {"manual_snapshot_quotas": {"ManualClusterSnapshots": 100000,
                                                                        "ManualSnapshots": 100000}})
            for c, ident in ((eu, "quota-1"), (self.src, "quota-src")):
                try:
                    c.delete_db_snapshot(DBSnapshotIdentifier=ident)
                except Exception:  # noqa: BLE001 - clean-up of what the test may not have made
                    pass


class SharingTest(EmulatorTest):
    def test_share_describe_copy_across_accounts(self) -> None:
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="share-1",
                                            Tags=[{"Key": "snapcourier:namespace", "Value": "default"}])
        source = cluster_snapshot(self.src, "share-1")
        arn = source["DBClusterSnapshotArn"]
        self.assertEqual(source["KmsKeyId"], cmk(SOURCE))
        # Describe by ARN works for the owner, not for others until shared.
        self.assertEqual(cluster_snapshot(self.src, arn)["DBClusterSnapshotIdentifier"], "share-1")
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.dst, arn)

        self.share("share-1")
        self.share("share-1")  # a repeat is a no-op
        attributes = self.src.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier="share-1")
        restore = attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"][0]
        self.assertEqual(restore["AttributeValues"], [DEST])

        shared = self.dst.describe_db_cluster_snapshots(SnapshotType="shared", IncludeShared=True)
        listed = {s["DBClusterSnapshotIdentifier"]: s for s in shared["DBClusterSnapshots"]}
        self.assertIn(arn, listed)
        self.assertEqual(listed[arn]["SnapshotType"], "shared")
        self.assertEqual(listed[arn]["DBClusterSnapshotArn"], arn)
        self.assertEqual(listed[arn]["TagList"], [])  # the owner's tags stay the owner's
        self.assertEqual(cluster_snapshot(self.dst, arn)["SnapshotType"], "shared")
        own_and_shared = self.dst.describe_db_cluster_snapshots(IncludeShared=True)["DBClusterSnapshots"]
        self.assertIn(arn, [s["DBClusterSnapshotIdentifier"] for s in own_and_shared])
        self.assertNotIn(arn, [s["DBClusterSnapshotIdentifier"]
                               for s in self.dst.describe_db_cluster_snapshots()["DBClusterSnapshots"]])
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, stranger(), arn)
        self.assertError("DBClusterSnapshotNotFoundFault", stranger().copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="nope",
                         KmsKeyId="alias/aws/rds")

        self.assertError("InvalidParameterCombination", self.dst.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="share-1-copy")
        copied = self.dst.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="share-1-copy",
            KmsKeyId=cmk(DEST), Tags=[{"Key": "snapcourier:namespace", "Value": "default"}],
        )["DBClusterSnapshot"]
        self.assertEqual(copied["DBClusterSnapshotArn"],
                         "arn:aws:rds:us-east-1:222222222222:cluster-snapshot:share-1-copy")
        self.assertEqual(copied["KmsKeyId"], cmk(DEST))
        self.assertEqual(copied["SourceDBClusterSnapshotArn"], arn)
        self.assertEqual(copied["TagList"], [{"Key": "snapcourier:namespace", "Value": "default"}])
        self.assertGreater(copied["SnapshotCreateTime"], source["SnapshotCreateTime"])
        self.assertLess(abs(copied["SnapshotCreateTime"] - datetime.now(timezone.utc)), timedelta(minutes=1))
        self.assertEqual(cluster_snapshot(self.dst, "share-1-copy")["SnapshotType"], "manual")
        self.assertError("DBClusterSnapshotAlreadyExistsFault", self.dst.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="share-1-copy",
                         KmsKeyId=cmk(DEST))

        # The second hop, within the destination account, to another region.
        eu = client("destination", region="eu-west-1")
        self.assertError("InvalidParameterValue", eu.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="x",
                         KmsKeyId=cmk(DEST, "eu-west-1"))
        self.assertError("InvalidParameterCombination", eu.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=copied["DBClusterSnapshotArn"],
                         TargetDBClusterSnapshotIdentifier="share-1-eu")
        eu.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=copied["DBClusterSnapshotArn"],
                                    TargetDBClusterSnapshotIdentifier="share-1-eu",
                                    KmsKeyId=cmk(DEST, "eu-west-1"))
        self.assertEqual(cluster_snapshot(eu, "share-1-eu")["KmsKeyId"], cmk(DEST, "eu-west-1"))
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.dst, "share-1-eu")

    def test_unencrypted_cluster_snapshot_cannot_be_encrypted_by_copy(self) -> None:
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="analytics-db",
                                            DBClusterSnapshotIdentifier="plain-1")
        self.share("plain-1")
        arn = cluster_snapshot(self.src, "plain-1")["DBClusterSnapshotArn"]
        self.assertError("InvalidParameterCombination", self.dst.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="plain-1-copy",
                         KmsKeyId=cmk(DEST))
        copied = self.dst.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=arn,
                                                   TargetDBClusterSnapshotIdentifier="plain-1-copy")
        self.assertFalse(copied["DBClusterSnapshot"]["StorageEncrypted"])
        self.assertNotIn("KmsKeyId", copied["DBClusterSnapshot"])

    def test_default_key_and_public_sharing_refused(self) -> None:
        default_key = STATE["default_rds_keys"][SOURCE]["us-east-1"]
        control("/snapcourier/clusters", {"account": SOURCE, "region": "us-east-1", "id": "default-key-db",
                                          "engine": "aurora-mysql", "kms_key_id": default_key})
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="default-key-db",
                                            DBClusterSnapshotIdentifier="default-key-1")
        self.assertEqual(cluster_snapshot(self.src, "default-key-1")["KmsKeyId"], default_key)
        err = self.assertError("InvalidParameterValue", self.share, "default-key-1")
        self.assertIn("default KMS key", err.response["Error"]["Message"])
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="public-1")
        self.assertError("InvalidParameterValue", self.share, "public-1", "all")
        # The SDK path takes the aws/rds key too, by alias.
        self.src.create_db_cluster(DBClusterIdentifier="alias-key-db", Engine="aurora-postgresql",
                                   MasterUsername="u", MasterUserPassword="password1",
                                   StorageEncrypted=True, KmsKeyId="alias/aws/rds")
        created = self.src.describe_db_clusters(DBClusterIdentifier="alias-key-db")["DBClusters"][0]
        self.assertEqual(created["KmsKeyId"], default_key)

    def test_automated_snapshots_cannot_be_deleted(self) -> None:
        automated = self.src.describe_db_cluster_snapshots(DBClusterIdentifier="scratch-tmp",
                                                           SnapshotType="automated")["DBClusterSnapshots"][0]
        self.assertError("InvalidDBClusterSnapshotStateFault", self.src.delete_db_cluster_snapshot,
                         DBClusterSnapshotIdentifier=automated["DBClusterSnapshotIdentifier"])

    def test_instance_snapshots(self) -> None:
        self.src.create_db_instance(DBInstanceIdentifier="inst-db", Engine="postgres",
                                    DBInstanceClass="db.t3.micro", MasterUsername="u",
                                    MasterUserPassword="password1", AllocatedStorage=20)
        self.src.create_db_snapshot(DBInstanceIdentifier="inst-db", DBSnapshotIdentifier="inst-1",
                                    Tags=[{"Key": "k", "Value": "v"}])
        own = self.src.describe_db_snapshots(DBSnapshotIdentifier="inst-1")["DBSnapshots"][0]
        self.assertEqual(own["TagList"], [{"Key": "k", "Value": "v"}])
        self.assertFalse(own["Encrypted"])
        for _ in range(2):
            self.src.modify_db_snapshot_attribute(DBSnapshotIdentifier="inst-1", AttributeName="restore",
                                                  ValuesToAdd=[DEST])
        values = self.src.describe_db_snapshot_attributes(DBSnapshotIdentifier="inst-1")
        self.assertEqual(values["DBSnapshotAttributesResult"]["DBSnapshotAttributes"][0]["AttributeValues"],
                         [DEST])
        shared = self.dst.describe_db_snapshots(SnapshotType="shared", IncludeShared=True)["DBSnapshots"]
        self.assertIn((own["DBSnapshotArn"], "shared"),
                      [(s["DBSnapshotIdentifier"], s["SnapshotType"]) for s in shared])
        self.assertError("DBSnapshotNotFound", stranger().describe_db_snapshots,
                         DBSnapshotIdentifier=own["DBSnapshotArn"])
        # Unlike cluster snapshots, an instance snapshot may be encrypted by copying.
        copied = self.dst.copy_db_snapshot(SourceDBSnapshotIdentifier=own["DBSnapshotArn"],
                                           TargetDBSnapshotIdentifier="inst-1-copy", KmsKeyId=cmk(DEST))
        self.assertTrue(copied["DBSnapshot"]["Encrypted"])
        self.assertEqual(copied["DBSnapshot"]["KmsKeyId"], cmk(DEST))


class PagingTest(EmulatorTest):
    def test_cluster_snapshots_page(self) -> None:
        day0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        specs = [{"account": SOURCE, "region": "eu-west-1", "id": f"paged-{i:03d}", "resource_id": "paged-db",
                  "created": (day0 + timedelta(hours=i)).isoformat(), "shared_with": [DEST]} for i in range(150)]
        arns = control("/snapcourier/snapshots", specs)["arns"]
        self.assertEqual(len(arns), 150)
        eu = client("source", region="eu-west-1")
        first = eu.describe_db_cluster_snapshots()
        self.assertEqual(len(first["DBClusterSnapshots"]), 100)
        second = eu.describe_db_cluster_snapshots(Marker=first["Marker"])
        self.assertEqual(len(second["DBClusterSnapshots"]), 50)
        self.assertNotIn("Marker", second)
        ids = [s["DBClusterSnapshotIdentifier"] for s in first["DBClusterSnapshots"] + second["DBClusterSnapshots"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 150)
        self.assertEqual(second["DBClusterSnapshots"][-1]["SnapshotCreateTime"], day0 + timedelta(hours=149))

        pages = eu.get_paginator("describe_db_cluster_snapshots").paginate(PaginationConfig={"PageSize": 20})
        sizes = [len(p["DBClusterSnapshots"]) for p in pages]
        self.assertEqual(sizes, [20] * 7 + [10])
        shared = client("destination", region="eu-west-1").get_paginator("describe_db_cluster_snapshots").paginate(
            SnapshotType="shared", IncludeShared=True, PaginationConfig={"PageSize": 50})
        self.assertEqual(sorted(s["DBClusterSnapshotIdentifier"] for p in shared for s in p["DBClusterSnapshots"]),
                         sorted(arns))
        for bad in (19, 101):
            self.assertError("InvalidParameterValue", eu.describe_db_cluster_snapshots, MaxRecords=bad)

    def test_clusters_instances_and_instance_snapshots_page(self) -> None:
        dst = client("destination", region="eu-west-1")
        for i in range(21):
            control("/snapcourier/clusters", {"account": DEST, "region": "eu-west-1", "id": f"page-db-{i:02d}"})
            dst.create_db_instance(DBInstanceIdentifier=f"page-inst-{i:02d}", Engine="postgres",
                                   DBInstanceClass="db.t3.micro", MasterUsername="u",
                                   MasterUserPassword="password1", AllocatedStorage=20)
        control("/snapcourier/snapshots", [{"account": DEST, "region": "eu-west-1", "kind": "instance",
                                            "id": f"page-snap-{i:02d}", "resource_id": "page-inst-00"}
                                           for i in range(21)])
        for call, key, expected in [(dst.describe_db_clusters, "DBClusters", 21),
                                    (dst.describe_db_instances, "DBInstances", 21),
                                    (dst.describe_db_snapshots, "DBSnapshots", 42)]:  # 21 automated
            pages = [call(MaxRecords=20)]
            while "Marker" in pages[-1]:
                pages.append(call(MaxRecords=20, Marker=pages[-1]["Marker"]))
            self.assertEqual([len(p[key]) for p in pages][:2], [20, 20 if expected > 40 else 1], key)
            self.assertEqual(sum(len(p[key]) for p in pages), expected, key)
            self.assertError("InvalidParameterValue", call, MaxRecords=10)


class CreatingPhaseTest(EmulatorTest):
    def test_creating_then_available(self) -> None:
        control("/snapcourier/config", {"creating_reads": 2})
        made = self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db",
                                                   DBClusterSnapshotIdentifier="slow-1")["DBClusterSnapshot"]
        self.assertEqual(made["Status"], "creating")
        self.assertEqual(cluster_snapshot(self.src, "slow-1")["Status"], "creating")
        self.assertError("InvalidDBClusterSnapshotStateFault", self.share, "slow-1")
        self.assertError("InvalidDBClusterSnapshotStateFault", self.src.delete_db_cluster_snapshot,
                         DBClusterSnapshotIdentifier="slow-1")
        self.assertError("InvalidDBClusterSnapshotStateFault", self.src.copy_db_cluster_snapshot,
                         SourceDBClusterSnapshotIdentifier="slow-1", TargetDBClusterSnapshotIdentifier="slow-2")
        self.assertEqual(cluster_snapshot(self.src, "slow-1")["Status"], "creating")
        self.assertEqual(cluster_snapshot(self.src, "slow-1")["Status"], "available")
        copied = self.src.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier="slow-1",
                                                   TargetDBClusterSnapshotIdentifier="slow-2")
        self.assertEqual(copied["DBClusterSnapshot"]["Status"], "creating")
        control("/snapcourier/config", {"creating_reads": 0})
        self.assertEqual(cluster_snapshot(self.src, "slow-2")["Status"], "creating")
        self.assertEqual(cluster_snapshot(self.src, "slow-2")["Status"], "creating")
        self.assertEqual(cluster_snapshot(self.src, "slow-2")["Status"], "available")
        self.share("slow-1")
        self.src.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="slow-2")

    def test_instance_snapshot_creating(self) -> None:
        self.src.create_db_instance(DBInstanceIdentifier="slow-inst", Engine="mysql",
                                    DBInstanceClass="db.t3.micro", MasterUsername="u",
                                    MasterUserPassword="password1", AllocatedStorage=20)
        control("/snapcourier/config", {"creating_reads": 1})
        made = self.src.create_db_snapshot(DBInstanceIdentifier="slow-inst", DBSnapshotIdentifier="slow-inst-1")
        self.assertEqual(made["DBSnapshot"]["Status"], "creating")
        self.assertError("InvalidDBSnapshotState", self.src.delete_db_snapshot, DBSnapshotIdentifier="slow-inst-1")
        statuses = [self.src.describe_db_snapshots(DBSnapshotIdentifier="slow-inst-1")["DBSnapshots"][0]["Status"]
                    for _ in range(2)]
        self.assertEqual(statuses, ["creating", "available"])

    def test_stuck(self) -> None:
        control("/snapcourier/config", {"stuck": ["^stuck-"]})
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="billing-db", DBClusterSnapshotIdentifier="stuck-1")
        for _ in range(5):
            self.assertEqual(cluster_snapshot(self.src, "stuck-1")["Status"], "creating")
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(cluster_snapshot(self.src, "stuck-1")["Status"], "available")

    def test_inserted_creating(self) -> None:
        control("/snapcourier/snapshots", [
            {"account": SOURCE, "region": "us-east-1", "id": "ins-creating-1", "status": "creating",
             "creating_reads": 1},
            {"account": SOURCE, "region": "us-east-1", "id": "ins-creating-2", "status": "creating"},
        ])
        self.assertEqual([cluster_snapshot(self.src, "ins-creating-1")["Status"] for _ in range(2)],
                         ["creating", "available"])
        self.assertEqual({cluster_snapshot(self.src, "ins-creating-2")["Status"] for _ in range(3)}, {"creating"})


class ThrottlingTest(EmulatorTest):
    def outcomes(self, rds: Any, count: int) -> list[bool]:
        """True where the call was throttled."""
        results = []
        for _ in range(count):
            try:
                rds.describe_db_clusters(DBClusterIdentifier="orders-db")
                results.append(False)
            except ClientError as err:
                self.assertEqual(err.response["Error"]["Code"], "Throttling")
                self.assertEqual(err.response["ResponseMetadata"]["HTTPStatusCode"], 400)
                self.assertEqual(err.response["Error"]["Message"], "Rate exceeded")
                results.append(True)
        return results

    def test_rate_and_determinism(self) -> None:
        control("/snapcourier/config", {"throttle_rate": 0.3, "throttle_seed": 42})
        first = self.outcomes(self.src, 200)
        self.assertTrue(40 <= sum(first) <= 80, sum(first))
        control("/snapcourier/config", {"throttle_seed": 42})
        self.assertEqual(self.outcomes(self.src, 200), first)
        control("/snapcourier/config", {"throttle_seed": 7})
        self.assertNotEqual(self.outcomes(self.src, 200), first)

    def test_throttled_call_does_nothing(self) -> None:
        control("/snapcourier/config", {"throttle_rate": 1.0, "throttle_services": ["rds", "iam", "sts", "kms"]})
        self.assertError("Throttling", self.src.create_db_cluster_snapshot, DBClusterIdentifier="orders-db",
                         DBClusterSnapshotIdentifier="throttled-1")
        self.assertEqual(client("source", "sts").get_caller_identity()["Account"], SOURCE)
        client("source", "iam").list_users()
        self.assertError("ThrottlingException", client("source", "kms").describe_key, KeyId="alias/snapcourier")
        control("/snapcourier/config", {"throttle_rate": 0.0})
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.src, "throttled-1")


class DenyTest(EmulatorTest):
    def tearDown(self) -> None:
        control("/snapcourier/config", {"deny": []})
        super().tearDown()

    def test_a_deny_rule_refuses_only_its_account_action_and_resource(self) -> None:
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="deny-a")
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="billing-db", DBClusterSnapshotIdentifier="deny-b")
        control("/snapcourier/config", {"deny": [{"account": SOURCE, "action": "rds:ModifyDBClusterSnapshotAttribute",
                                                   "resource": "^deny-b$"}]})
        try:
            self.src.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="deny-b", AttributeName="restore",
                                                          ValuesToAdd=[DEST])
            self.fail("the deny rule did not apply")
        except ClientError as err:
            self.assertEqual(err.response["Error"]["Code"], "AccessDenied")
            self.assertEqual(err.response["ResponseMetadata"]["HTTPStatusCode"], 403)
            self.assertIn("with an explicit deny", err.response["Error"]["Message"])
        # Nothing happened to the denied snapshot; the other one is shared as usual.
        attrs = self.src.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier="deny-b")
        values = attrs["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
        self.assertFalse(any(a["AttributeValues"] for a in values))
        self.src.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="deny-a", AttributeName="restore",
                                                      ValuesToAdd=[DEST])
        self.src.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="deny-a")
        self.src.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="deny-b")

    def test_deny_rules_are_validated(self) -> None:
        for bad in ({"deny": [{"account": SOURCE}]}, {"deny": [{"account": SOURCE, "action": "a", "resource": "("}]},
                    {"deny": "all"}):
            self.assertEqual(control_error("/snapcourier/config", bad)[0], 400)


class ControlTest(EmulatorTest):
    def test_request_counts(self) -> None:
        control("/snapcourier/requests/reset", {})
        self.src.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="orders-db-before-migration")
        self.src.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="billing-db-other-team")
        self.dst.describe_db_clusters()
        client("destination", "kms").describe_key(KeyId="alias/snapcourier")
        control("/snapcourier/config", {"throttle_rate": 1.0})
        self.assertError("Throttling", self.dst.describe_db_clusters)
        counts = control("/snapcourier/requests")
        self.assertEqual(counts["total"], 5)
        self.assertEqual(counts["by_action"], {"rds:DescribeDBClusterSnapshots": 2, "rds:DescribeDBClusters": 2,
                                               "kms:DescribeKey": 1})
        self.assertEqual(counts["by_account"][SOURCE]["total"], 2)
        self.assertEqual(counts["by_account"][DEST]["by_action"]["rds:DescribeDBClusters"], 2)
        self.assertEqual(counts["throttled"], {"total": 1, "by_action": {"rds:DescribeDBClusters": 1}})

    def test_latency_is_paid_per_call_and_overlapping_calls_are_seen(self) -> None:
        control("/snapcourier/config", {"latency_ms": 300})
        control("/snapcourier/requests/reset", {})
        try:
            started = time.monotonic()
            self.dst.describe_db_clusters()
            self.assertGreaterEqual(time.monotonic() - started, 0.3)
            # Four calls at once wait together, not one after another.
            clients = [client("destination") for _ in range(4)]
            threads = [threading.Thread(target=c.describe_db_clusters) for c in clients]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertLess(time.monotonic() - started, 4 * 0.3)
            self.assertGreaterEqual(control("/snapcourier/requests")["peak_concurrent"]["rds"], 2)
        finally:
            control("/snapcourier/config", {"latency_ms": 0})
        for bad in ({"latency_ms": -1}, {"latency_ms": 6000}, {"latency_services": "rds"}):
            self.assertEqual(control_error("/snapcourier/config", bad)[0], 400)

    def test_config_round_trip_and_validation(self) -> None:
        changes = {"creating_reads": 3, "stuck": ["x"], "restore_reads": 2, "restore_failures": ["^y-"]}
        merged = control("/snapcourier/config", changes)
        self.assertEqual(merged, {**DEFAULT_CONFIG, **changes})
        self.assertEqual(control("/snapcourier/config"), merged)
        for bad in ({"creating_reads": -1}, {"throttle_rate": 2}, {"stuck": ["("]}, {"nope": 1},
                    {"restore_reads": -1}, {"restore_reads": True}, {"restore_failures": ["("]},
                    {"restore_failures": "x"}):
            self.assertEqual(control_error("/snapcourier/config", bad)[0], 400)
        self.assertEqual(control("/snapcourier/config"), merged)

    def test_insert_snapshot(self) -> None:
        arn = control("/snapcourier/snapshots", {
            "account": DEST, "region": "us-east-1", "kind": "cluster", "id": "inserted-1",
            "resource_id": "gone-db", "engine": "aurora-mysql", "created": "2025-06-01T12:00:00Z",
            "kms_key_id": cmk(DEST), "tags": [{"Key": "a", "Value": "b"}], "snapshot_type": "manual",
        })["arn"]
        self.assertEqual(arn, "arn:aws:rds:us-east-1:222222222222:cluster-snapshot:inserted-1")
        got = cluster_snapshot(self.dst, "inserted-1")
        self.assertEqual((got["DBClusterIdentifier"], got["Engine"], got["KmsKeyId"], got["StorageEncrypted"]),
                         ("gone-db", "aurora-mysql", cmk(DEST), True))
        self.assertEqual(got["SnapshotCreateTime"], datetime(2025, 6, 1, 12, tzinfo=timezone.utc))
        self.assertEqual(got["TagList"], [{"Key": "a", "Value": "b"}])
        self.assertNotIn("gone-db", [c["DBClusterIdentifier"] for c in self.dst.describe_db_clusters()["DBClusters"]])
        # A failed snapshot stays listed as failed.
        control("/snapcourier/snapshots", {
            "account": DEST, "region": "us-east-1", "kind": "cluster", "id": "inserted-failed",
            "resource_id": "gone-db", "created": "2025-06-02T12:00:00Z", "status": "failed",
        })
        self.assertEqual(cluster_snapshot(self.dst, "inserted-failed")["Status"], "failed")
        self.dst.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="inserted-failed")

    def test_bulk_insert_is_all_or_nothing(self) -> None:
        status, message = control_error("/snapcourier/snapshots", [
            {"account": SOURCE, "region": "us-east-1", "id": "bulk-ok"},
            {"account": SOURCE, "region": "us-east-1", "id": "bulk-bad", "created": "yesterday"},
        ])
        self.assertEqual(status, 400)
        self.assertIn("created", message)
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.src, "bulk-ok")
        self.assertEqual(control_error("/snapcourier/snapshots",
                                       {"account": SOURCE, "region": "us-east-1",
                                        "id": "orders-db-before-migration"})[0], 400)
        self.assertEqual(control_error("/snapcourier/nowhere", {})[0], 404)


class LifelineTest(unittest.TestCase):
    def test_exits_when_watched_pid_dies(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "w.json"
            watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            emulator, _ = start_emulator(state, "--watch-pid", str(watched.pid), seed="empty")
            self.assertTrue(state.exists())
            watched.kill()
            watched.wait()
            self.assertEqual(emulator.wait(5), 0)
            self.assertFalse(state.exists())
            emulator.stdin.close()
            emulator.stdout.close()

    def test_exits_on_sigterm(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "t.json"
            emulator, startup = start_emulator(state, seed="empty")
            self.assertLess(startup, 10)
            endpoint = json.loads(state.read_text())["endpoint"]
            client_ = boto3.client("rds", region_name="us-east-1", endpoint_url=endpoint,
                                   aws_access_key_id="AKIAEXAMPLE000000000", aws_secret_access_key="x")
            self.assertEqual(client_.describe_db_cluster_snapshots()["DBClusterSnapshots"], [])
            emulator.send_signal(signal.SIGTERM)
            self.assertEqual(emulator.wait(5), 0)
            self.assertFalse(state.exists())
            emulator.stdin.close()
            emulator.stdout.close()


# --- Redshift -------------------------------------------------------------------------

def rs_client(role: str, region: str = "us-east-1") -> Any:
    return client(role, "redshift", region)


def rs_stranger(region: str = "us-east-1") -> Any:
    """A Redshift client of a third account that nothing is shared with."""
    rs = boto3.client("redshift", region_name=region, endpoint_url=STATE["endpoint"], config=NO_RETRIES,
                      aws_access_key_id="AKIAEXAMPLE333333333", aws_secret_access_key="x")
    rs.meta.events.register("before-sign.redshift.*", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", "333333333333"))
    return rs


def rs_cluster(ident: str, account: str = SOURCE, region: str = "us-east-1", **spec: Any) -> str:
    return control("/snapcourier/clusters", {"kind": "redshift", "account": account, "region": region,
                                             "id": ident, **spec})["arn"]


def rs_insert(specs: Any) -> Any:
    return control("/snapcourier/snapshots", specs)


def rs_snapshot(rs: Any, ident: str, **params: Any) -> dict[str, Any]:
    return rs.describe_cluster_snapshots(SnapshotIdentifier=ident, **params)["Snapshots"][0]


def rs_ids(rs: Any, **params: Any) -> list[str]:
    return [s["SnapshotIdentifier"] for s in rs.describe_cluster_snapshots(**params)["Snapshots"]]


def default_redshift_key(account: str, region: str = "us-east-1") -> str:
    return STATE["default_redshift_keys"][account][region]


class RedshiftTest(EmulatorTest):
    def setUp(self) -> None:
        super().setUp()
        self.rs_src = rs_client("source")
        self.rs_dst = rs_client("destination")
        self.rs_src_eu = rs_client("source", "eu-west-1")


class RedshiftClusterTest(RedshiftTest):
    def test_default_keys_are_aws_managed(self) -> None:
        for account in (SOURCE, DEST):
            for region, number in [("us-east-1", 0x201), ("eu-west-1", 0x202)]:
                self.assertEqual(default_redshift_key(account, region),
                                 f"arn:aws:kms:{region}:{account}:key/{number:08x}-0000-4000-8000-{account}")
        key = client("source", "kms").describe_key(KeyId="alias/aws/redshift")["KeyMetadata"]
        self.assertEqual((key["Arn"], key["KeyManager"]), (default_redshift_key(SOURCE), "AWS"))

    def test_encryption_tags_and_status(self) -> None:
        rs_cluster("rsc-cmk", kms_key_id="alias/snapcourier", tags=[{"Key": "team", "Value": "data"}])
        rs_cluster("rsc-default", encrypted=True, status="paused")
        rs_cluster("rsc-plain", automated_snapshot=False)
        self.rs_src.create_cluster(ClusterIdentifier="rsc-api", NodeType="ra3.xlplus", MasterUsername="u",
                                   MasterUserPassword="Password1", Encrypted=True)
        got = {c["ClusterIdentifier"]: c for c in self.rs_src.describe_clusters()["Clusters"]}
        self.assertEqual((got["rsc-cmk"]["Encrypted"], got["rsc-cmk"]["KmsKeyId"]), (True, cmk(SOURCE)))
        self.assertEqual(got["rsc-cmk"]["Tags"], [{"Key": "team", "Value": "data"}])
        self.assertEqual(got["rsc-default"]["KmsKeyId"], default_redshift_key(SOURCE))
        self.assertEqual(got["rsc-api"]["KmsKeyId"], default_redshift_key(SOURCE))
        self.assertEqual(got["rsc-default"]["ClusterStatus"], "paused")
        self.assertFalse(got["rsc-plain"]["Encrypted"])
        self.assertNotIn("KmsKeyId", got["rsc-plain"])
        self.assertNotIn("ClusterSnapshotCopyStatus", got["rsc-plain"])
        # A new cluster has an automated snapshot rs:<cluster>-<yyyy-mm-dd-hh-mm-ss> unless asked otherwise.
        automated = rs_ids(self.rs_src, ClusterIdentifier="rsc-cmk", SnapshotType="automated")
        self.assertRegex(automated[0], r"^rs:rsc-cmk-\d{4}(-\d\d){5}$")
        self.assertEqual(rs_ids(self.rs_src, ClusterIdentifier="rsc-plain"), [])
        self.assertError("ClusterNotFound", self.rs_src.describe_clusters, ClusterIdentifier="rsc-none")
        by_tag = self.rs_src.describe_clusters(TagKeys=["team"], TagValues=["data", "x"])["Clusters"]
        self.assertEqual([c["ClusterIdentifier"] for c in by_tag], ["rsc-cmk"])
        self.assertEqual(self.rs_src.describe_clusters(TagValues=["nope"])["Clusters"], [])

    def test_clusters_page(self) -> None:
        dst_eu = rs_client("destination", "eu-west-1")
        for i in range(23):
            rs_cluster(f"rsp-{i:02d}", account=DEST, region="eu-west-1", automated_snapshot=False)
        pages = [dst_eu.describe_clusters(MaxRecords=20)]
        while "Marker" in pages[-1]:
            pages.append(dst_eu.describe_clusters(MaxRecords=20, Marker=pages[-1]["Marker"]))
        self.assertEqual(len(pages[0]["Clusters"]), 20)
        ids = [c["ClusterIdentifier"] for p in pages for c in p["Clusters"]]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertLessEqual({f"rsp-{i:02d}" for i in range(23)}, set(ids))
        for bad in (19, 101):
            self.assertError("InvalidParameterValue", dst_eu.describe_clusters, MaxRecords=bad)

    def test_cluster_route_validation(self) -> None:
        base = {"kind": "redshift", "account": SOURCE, "region": "us-east-1"}
        rs_cluster("rsv-once")
        for bad in ({"id": "rsv-once"}, {"id": "rsv-x", "status": "sleeping"}, {"id": "rsv-x", "encrypted": "yes"},
                    {"id": "rsv-x", "kms_key_id": cmk(SOURCE), "encrypted": False},
                    {"id": "rsv-x", "kms_key_id": cmk(DEST)}, {"id": "rsv-x", "number_of_nodes": 0},
                    {"id": "rsv-x", "manual_snapshot_retention_period": 0}, {"region": "nowhere", "id": "rsv-x"},
                    {"id": ""}):
            self.assertEqual(control_error("/snapcourier/clusters", {**base, **bad})[0], 400, bad)
        self.assertError("ClusterNotFound", self.rs_src.describe_clusters, ClusterIdentifier="rsv-x")


class RedshiftSnapshotTest(RedshiftTest):
    def test_create_and_its_faults(self) -> None:
        rs_cluster("rss-db", kms_key_id=cmk(SOURCE))
        made = self.rs_src.create_cluster_snapshot(
            ClusterIdentifier="rss-db", SnapshotIdentifier="rss-1", ManualSnapshotRetentionPeriod=7,
            Tags=[{"Key": "snapcourier:namespace", "Value": "demo"}])["Snapshot"]
        self.assertEqual(made["Status"], "available")
        got = rs_snapshot(self.rs_src, "rss-1")
        for key, value in [("ClusterIdentifier", "rss-db"), ("SnapshotType", "manual"), ("OwnerAccount", SOURCE),
                           ("Encrypted", True), ("KmsKeyId", cmk(SOURCE)), ("ManualSnapshotRetentionPeriod", 7),
                           ("SnapshotArn", "arn:aws:redshift:us-east-1:111111111111:snapshot:rss-db/rss-1"),
                           ("Tags", [{"Key": "snapcourier:namespace", "Value": "demo"}])]:
            self.assertEqual(got[key], value, key)
        self.assertNotIn("AccountsWithRestoreAccess", got)
        self.assertNotIn("SourceRegion", got)
        self.assertLess(abs(got["SnapshotCreateTime"] - datetime.now(timezone.utc)), timedelta(minutes=1))
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rss-db", SnapshotIdentifier="rss-2")
        self.assertEqual(rs_snapshot(self.rs_src, "rss-2")["ManualSnapshotRetentionPeriod"], -1)

        self.assertError("ClusterSnapshotAlreadyExists", self.rs_src.create_cluster_snapshot,
                         ClusterIdentifier="rss-db", SnapshotIdentifier="rss-1")
        self.assertError("ClusterNotFound", self.rs_src.create_cluster_snapshot,
                         ClusterIdentifier="rss-none", SnapshotIdentifier="rss-3")
        for bad in (0, 3654, -2):
            self.assertError("InvalidRetentionPeriodFault", self.rs_src.create_cluster_snapshot,
                             ClusterIdentifier="rss-db", SnapshotIdentifier="rss-3", ManualSnapshotRetentionPeriod=bad)
        rs_cluster("rss-paused", status="paused")
        self.assertError("InvalidClusterState", self.rs_src.create_cluster_snapshot,
                         ClusterIdentifier="rss-paused", SnapshotIdentifier="rss-3")
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src, "rss-3")
        # Snapshots are per account and region.
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_dst, "rss-1")
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src_eu, "rss-1")

    def test_creating_phase_and_stuck(self) -> None:
        rs_cluster("rsslow-db")
        control("/snapcourier/config", {"creating_reads": 2})
        made = self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsslow-db", SnapshotIdentifier="rsslow-1")
        self.assertEqual(made["Snapshot"]["Status"], "creating")
        self.assertError("InvalidClusterSnapshotState", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rsslow-1", AccountWithRestoreAccess=DEST)
        self.assertError("InvalidClusterSnapshotState", self.rs_src.delete_cluster_snapshot,
                         SnapshotIdentifier="rsslow-1")
        self.assertEqual([rs_snapshot(self.rs_src, "rsslow-1")["Status"] for _ in range(3)],
                         ["creating", "creating", "available"])
        control("/snapcourier/config", {"creating_reads": 0, "stuck": ["^rsstuck-"]})
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsslow-db", SnapshotIdentifier="rsstuck-1")
        self.assertEqual({rs_snapshot(self.rs_src, "rsstuck-1")["Status"] for _ in range(4)}, {"creating"})
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(rs_snapshot(self.rs_src, "rsstuck-1")["Status"], "available")
        rs_insert([{"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsins-creating",
                    "cluster": "rsslow-db", "status": "creating", "creating_reads": 1}])
        self.assertEqual([rs_snapshot(self.rs_src, "rsins-creating")["Status"] for _ in range(2)],
                         ["creating", "available"])

    def test_describe_filters(self) -> None:
        rs_cluster("rsf-db", automated_snapshot=False)
        day0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
        rs_insert([
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsf-owner", "cluster": "rsf-db",
             "created": day0.isoformat(), "tags": [{"Key": "owner", "Value": "admin"}]},
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsf-env", "cluster": "rsf-db",
             "created": (day0 + timedelta(days=1)).isoformat(), "tags": [{"Key": "environment", "Value": "test"}]},
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsf-mixed", "cluster": "rsf-db",
             "created": (day0 + timedelta(days=2)).isoformat(),
             "tags": [{"Key": "owner", "Value": "test"}, {"Key": "other", "Value": "admin"}]},
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsf-none", "cluster": "rsf-db",
             "created": (day0 + timedelta(days=3)).isoformat()},
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rsf-db",
             "snapshot_type": "automated", "created": (day0 + timedelta(days=4)).isoformat()},
        ])
        mine = {"ClusterIdentifier": "rsf-db"}
        self.assertEqual(rs_ids(self.rs_src, **mine),
                         ["rs:rsf-db-2026-03-05-00-00-00", "rsf-env", "rsf-mixed", "rsf-none", "rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, SnapshotType="automated", **mine), ["rs:rsf-db-2026-03-05-00-00-00"])
        self.assertEqual(rs_ids(self.rs_src, SnapshotType="manual", **mine),
                         ["rsf-env", "rsf-mixed", "rsf-none", "rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, OwnerAccount=SOURCE, SnapshotType="manual", **mine),
                         ["rsf-env", "rsf-mixed", "rsf-none", "rsf-owner"])
        # TagKeys: any of the keys; TagValues: any of the values; both: a tag with one of each.
        self.assertEqual(rs_ids(self.rs_src, TagKeys=["owner", "environment"], **mine),
                         ["rsf-env", "rsf-mixed", "rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, TagValues=["admin"], **mine), ["rsf-mixed", "rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, TagKeys=["owner"], TagValues=["admin"], **mine), ["rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, TagKeys=["owner", "environment"], TagValues=["admin", "test"], **mine),
                         ["rsf-env", "rsf-mixed", "rsf-owner"])
        self.assertEqual(rs_ids(self.rs_src, StartTime=day0 + timedelta(days=1), EndTime=day0 + timedelta(days=2),
                                **mine), ["rsf-env", "rsf-mixed"])
        automated = rs_snapshot(self.rs_src, "rs:rsf-db-2026-03-05-00-00-00")
        self.assertEqual((automated["SnapshotType"], automated["SnapshotCreateTime"]),
                         ("automated", day0 + timedelta(days=4)))
        self.assertNotIn("ManualSnapshotRetentionPeriod", automated)
        arn = rs_snapshot(self.rs_src, "rsf-owner")["SnapshotArn"]
        self.assertEqual(self.rs_src.describe_cluster_snapshots(SnapshotArn=arn)["Snapshots"][0]["SnapshotIdentifier"],
                         "rsf-owner")
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src, "rsf-gone")
        self.assertError("ClusterSnapshotNotFound", self.rs_dst.describe_cluster_snapshots, SnapshotArn=arn)
        self.assertError("InvalidParameterValue", self.rs_src.describe_cluster_snapshots, SnapshotType="shared")

    def test_snapshots_page(self) -> None:
        day0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        rs_insert([{"kind": "redshift", "account": DEST, "region": "eu-west-1", "id": f"rspage-{i:03d}",
                    "cluster": "rspage-db", "created": (day0 + timedelta(hours=i)).isoformat()} for i in range(130)])
        eu = rs_client("destination", "eu-west-1")
        first = eu.describe_cluster_snapshots(ClusterIdentifier="rspage-db")
        self.assertEqual(len(first["Snapshots"]), 100)
        second = eu.describe_cluster_snapshots(ClusterIdentifier="rspage-db", Marker=first["Marker"])
        self.assertEqual(len(second["Snapshots"]), 30)
        self.assertNotIn("Marker", second)
        pages = eu.get_paginator("describe_cluster_snapshots").paginate(
            ClusterIdentifier="rspage-db", PaginationConfig={"PageSize": 20})
        ids = [s["SnapshotIdentifier"] for p in pages for s in p["Snapshots"]]
        self.assertEqual(ids, [f"rspage-{i:03d}" for i in range(130)])
        for bad in (19, 101):
            self.assertError("InvalidParameterValue", eu.describe_cluster_snapshots, MaxRecords=bad)

    def test_copy_within_region(self) -> None:
        rs_cluster("rscp-db", kms_key_id=cmk(SOURCE), automated_snapshot=False)
        created = datetime(2026, 2, 1, 3, 4, 5, tzinfo=timezone.utc)
        rs_insert({"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rscp-db",
                   "snapshot_type": "automated", "created": created.isoformat(),
                   "tags": [{"Key": "k", "Value": "v"}]})
        source = "rs:rscp-db-2026-02-01-03-04-05"
        copied = self.rs_src.copy_cluster_snapshot(SourceSnapshotIdentifier=source,
                                                   SourceSnapshotClusterIdentifier="rscp-db",
                                                   TargetSnapshotIdentifier="rscp-keep",
                                                   ManualSnapshotRetentionPeriod=30)["Snapshot"]
        got = rs_snapshot(self.rs_src, "rscp-keep")
        for item in (copied, got):
            self.assertEqual((item["SnapshotType"], item["ClusterIdentifier"], item["OwnerAccount"]),
                             ("manual", "rscp-db", SOURCE))
            self.assertEqual((item["Encrypted"], item["KmsKeyId"]), (True, cmk(SOURCE)))
            self.assertEqual(item["ManualSnapshotRetentionPeriod"], 30)
            self.assertEqual(item["SnapshotCreateTime"], created)  # the data's point in time
            self.assertEqual(item["Tags"], [])  # CopyClusterSnapshot has no Tags; the source's are not copied
            self.assertNotIn("SourceRegion", item)
        self.assertError("ClusterSnapshotAlreadyExists", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier=source, TargetSnapshotIdentifier="rscp-keep")
        self.assertError("InvalidClusterSnapshotState", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier="rscp-keep", TargetSnapshotIdentifier="rscp-again")
        self.assertError("ClusterSnapshotNotFound", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier="rs:rscp-none", TargetSnapshotIdentifier="rscp-x")
        self.assertError("ClusterSnapshotNotFound", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier=source, SourceSnapshotClusterIdentifier="other-db",
                         TargetSnapshotIdentifier="rscp-x")
        self.assertError("InvalidRetentionPeriodFault", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier=source, TargetSnapshotIdentifier="rscp-x",
                         ManualSnapshotRetentionPeriod=0)
        rs_insert({"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rscp-db",
                   "snapshot_type": "automated", "status": "creating", "id": "rs:rscp-db-busy"})
        self.assertError("InvalidClusterSnapshotState", self.rs_src.copy_cluster_snapshot,
                         SourceSnapshotIdentifier="rs:rscp-db-busy", TargetSnapshotIdentifier="rscp-x")
        # Only the owner sees its snapshots: another account cannot copy them, shared or not.
        self.assertError("ClusterSnapshotNotFound", self.rs_dst.copy_cluster_snapshot,
                         SourceSnapshotIdentifier=source, TargetSnapshotIdentifier="rscp-x")

    def test_delete(self) -> None:
        rs_cluster("rsdel-db")
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsdel-db", SnapshotIdentifier="rsdel-1")
        self.rs_src.authorize_snapshot_access(SnapshotIdentifier="rsdel-1", AccountWithRestoreAccess=DEST)
        err = self.assertError("InvalidClusterSnapshotState", self.rs_src.delete_cluster_snapshot,
                               SnapshotIdentifier="rsdel-1")
        self.assertIn("other accounts are authorized", err.response["Error"]["Message"])
        self.assertError("ClusterSnapshotNotFound", self.rs_dst.delete_cluster_snapshot, SnapshotIdentifier="rsdel-1")
        self.rs_src.revoke_snapshot_access(SnapshotIdentifier="rsdel-1", AccountWithRestoreAccess=DEST)
        self.assertError("ClusterSnapshotNotFound", self.rs_src.delete_cluster_snapshot,
                         SnapshotIdentifier="rsdel-1", SnapshotClusterIdentifier="other-db")
        deleted = self.rs_src.delete_cluster_snapshot(SnapshotIdentifier="rsdel-1",
                                                      SnapshotClusterIdentifier="rsdel-db")["Snapshot"]
        self.assertEqual(deleted["Status"], "deleted")
        self.assertError("ClusterSnapshotNotFound", self.rs_src.delete_cluster_snapshot, SnapshotIdentifier="rsdel-1")
        automated = rs_ids(self.rs_src, ClusterIdentifier="rsdel-db", SnapshotType="automated")[0]
        self.assertError("InvalidClusterSnapshotState", self.rs_src.delete_cluster_snapshot,
                         SnapshotIdentifier=automated)


class RedshiftSharingTest(RedshiftTest):
    def test_share_and_describe_from_the_other_account(self) -> None:
        rs_cluster("rssh-db", kms_key_id=cmk(SOURCE))
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rssh-db", SnapshotIdentifier="rssh-1",
                                            Tags=[{"Key": "snapcourier:namespace", "Value": "demo"}])
        self.assertNotIn("rssh-1", rs_ids(self.rs_dst, OwnerAccount=SOURCE))
        shared = self.rs_src.authorize_snapshot_access(SnapshotIdentifier="rssh-1", SnapshotClusterIdentifier="rssh-db",
                                                       AccountWithRestoreAccess=DEST)["Snapshot"]
        self.assertEqual(shared["AccountsWithRestoreAccess"], [{"AccountId": DEST}])
        self.assertEqual(rs_snapshot(self.rs_src, "rssh-1")["AccountsWithRestoreAccess"], [{"AccountId": DEST}])

        # The destination sees it only when it asks for the owner's snapshots.
        self.assertNotIn("rssh-1", rs_ids(self.rs_dst))
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_dst, "rssh-1")
        self.assertIn("rssh-1", rs_ids(self.rs_dst, OwnerAccount=SOURCE))
        seen = rs_snapshot(self.rs_dst, "rssh-1", OwnerAccount=SOURCE)
        self.assertEqual((seen["OwnerAccount"], seen["ClusterIdentifier"], seen["SnapshotType"], seen["KmsKeyId"]),
                         (SOURCE, "rssh-db", "manual", cmk(SOURCE)))
        self.assertNotIn("AccountsWithRestoreAccess", seen)  # "visible only to the snapshot owner"
        self.assertEqual(seen["Tags"], [])
        by_arn = self.rs_dst.describe_cluster_snapshots(SnapshotArn=shared["SnapshotArn"])["Snapshots"]
        self.assertEqual([s["SnapshotIdentifier"] for s in by_arn], ["rssh-1"])
        self.assertEqual(rs_ids(self.rs_dst, OwnerAccount=SOURCE, TagKeys=["snapcourier:namespace"]), [])
        self.assertNotIn("rssh-1", rs_ids(rs_client("destination", "eu-west-1"), OwnerAccount=SOURCE))
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, rs_stranger(), "rssh-1", OwnerAccount=SOURCE)

        self.assertError("AuthorizationAlreadyExists", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rssh-1", AccountWithRestoreAccess=DEST)
        self.assertError("AccessToSnapshotDenied", self.rs_dst.revoke_snapshot_access,
                         SnapshotArn=shared["SnapshotArn"], AccountWithRestoreAccess=DEST)
        self.assertError("ClusterSnapshotNotFound", self.rs_dst.authorize_snapshot_access,
                         SnapshotArn=shared["SnapshotArn"], AccountWithRestoreAccess="333333333333")
        revoked = self.rs_src.revoke_snapshot_access(SnapshotArn=shared["SnapshotArn"],
                                                     AccountWithRestoreAccess=DEST)["Snapshot"]
        self.assertNotIn("AccountsWithRestoreAccess", revoked)
        self.assertError("AuthorizationNotFound", self.rs_src.revoke_snapshot_access,
                         SnapshotIdentifier="rssh-1", AccountWithRestoreAccess=DEST)
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_dst, "rssh-1", OwnerAccount=SOURCE)

    def test_authorize_faults_and_quota(self) -> None:
        others = [f"{i:012d}" for i in range(300000000000, 300000000020)]
        rs_insert([
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsq-full", "cluster": "rsq-db",
             "shared_with": others},
            {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rsq-db",
             "snapshot_type": "automated", "id": "rs:rsq-db-auto"},
        ])
        self.assertEqual(len(rs_snapshot(self.rs_src, "rsq-full")["AccountsWithRestoreAccess"]), 20)
        self.assertError("AuthorizationQuotaExceeded", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rsq-full", AccountWithRestoreAccess=DEST)
        self.assertError("ClusterSnapshotNotFound", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rsq-none", AccountWithRestoreAccess=DEST)
        self.assertError("ClusterSnapshotNotFound", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rsq-full", SnapshotClusterIdentifier="other-db",
                         AccountWithRestoreAccess=DEST)
        self.assertError("InvalidClusterSnapshotState", self.rs_src.authorize_snapshot_access,
                         SnapshotIdentifier="rs:rsq-db-auto", AccountWithRestoreAccess=DEST)
        for bad in (SOURCE, "not-an-account"):
            self.assertError("InvalidParameterValue", self.rs_src.authorize_snapshot_access,
                             SnapshotIdentifier="rsq-full", AccountWithRestoreAccess=bad)
        self.assertError("ClusterSnapshotNotFound", self.rs_src.revoke_snapshot_access,
                         SnapshotIdentifier="rsq-none", AccountWithRestoreAccess=DEST)
        self.rs_src.revoke_snapshot_access(SnapshotIdentifier="rsq-full", AccountWithRestoreAccess=others[0])
        self.rs_src.authorize_snapshot_access(SnapshotIdentifier="rsq-full", AccountWithRestoreAccess=DEST)
        self.assertIn("rsq-full", rs_ids(self.rs_dst, OwnerAccount=SOURCE))


class RedshiftCopyGrantTest(RedshiftTest):
    def test_grants(self) -> None:
        eu = self.rs_src_eu
        made = eu.create_snapshot_copy_grant(SnapshotCopyGrantName="rsg-cmk", KmsKeyId="alias/snapcourier",
                                             Tags=[{"Key": "a", "Value": "b"}])["SnapshotCopyGrant"]
        self.assertEqual((made["KmsKeyId"], made["Tags"]), (cmk(SOURCE, "eu-west-1"), [{"Key": "a", "Value": "b"}]))
        default = eu.create_snapshot_copy_grant(SnapshotCopyGrantName="rsg-default")["SnapshotCopyGrant"]
        self.assertEqual(default["KmsKeyId"], default_redshift_key(SOURCE, "eu-west-1"))
        self.assertError("SnapshotCopyGrantAlreadyExistsFault", eu.create_snapshot_copy_grant,
                         SnapshotCopyGrantName="rsg-cmk")
        self.assertError("InvalidParameterValue", eu.create_snapshot_copy_grant, SnapshotCopyGrantName="rsg-bad",
                         KmsKeyId="alias/nope")
        listed = eu.describe_snapshot_copy_grants()["SnapshotCopyGrants"]
        self.assertLessEqual({"rsg-cmk", "rsg-default"}, {g["SnapshotCopyGrantName"] for g in listed})
        self.assertEqual(eu.describe_snapshot_copy_grants(SnapshotCopyGrantName="rsg-cmk")["SnapshotCopyGrants"][0]
                         ["KmsKeyId"], cmk(SOURCE, "eu-west-1"))
        self.assertEqual([g["SnapshotCopyGrantName"] for g in eu.describe_snapshot_copy_grants(
            TagKeys=["a"])["SnapshotCopyGrants"]], ["rsg-cmk"])
        self.assertError("SnapshotCopyGrantNotFoundFault", eu.describe_snapshot_copy_grants,
                         SnapshotCopyGrantName="rsg-none")
        self.assertError("SnapshotCopyGrantNotFoundFault", self.rs_src.describe_snapshot_copy_grants,
                         SnapshotCopyGrantName="rsg-cmk")  # grants are per region
        self.assertError("SnapshotCopyGrantNotFoundFault", eu.delete_snapshot_copy_grant,
                         SnapshotCopyGrantName="rsg-none")
        eu.delete_snapshot_copy_grant(SnapshotCopyGrantName="rsg-default")
        self.assertError("SnapshotCopyGrantNotFoundFault", eu.describe_snapshot_copy_grants,
                         SnapshotCopyGrantName="rsg-default")

    def test_enable_and_disable_faults(self) -> None:
        rs_cluster("rse-enc", kms_key_id=cmk(SOURCE))
        rs_cluster("rse-plain")
        self.rs_src.create_snapshot_copy_grant(SnapshotCopyGrantName="rse-here")  # us-east-1: the wrong region
        for region in ("us-east-1", "mars-east-1"):
            self.assertError("UnknownSnapshotCopyRegionFault", self.rs_src.enable_snapshot_copy,
                             ClusterIdentifier="rse-plain", DestinationRegion=region)
        self.assertError("InvalidParameterValue", self.rs_src.enable_snapshot_copy,
                         ClusterIdentifier="rse-enc", DestinationRegion="eu-west-1")
        self.assertError("SnapshotCopyGrantNotFoundFault", self.rs_src.enable_snapshot_copy,
                         ClusterIdentifier="rse-enc", DestinationRegion="eu-west-1", SnapshotCopyGrantName="rse-here")
        self.assertError("ClusterNotFound", self.rs_src.enable_snapshot_copy,
                         ClusterIdentifier="rse-none", DestinationRegion="eu-west-1")
        self.assertError("InvalidRetentionPeriodFault", self.rs_src.enable_snapshot_copy,
                         ClusterIdentifier="rse-plain", DestinationRegion="eu-west-1", ManualSnapshotRetentionPeriod=0)
        self.rs_src_eu.create_snapshot_copy_grant(SnapshotCopyGrantName="rse-grant", KmsKeyId="alias/snapcourier")
        cluster = self.rs_src.enable_snapshot_copy(ClusterIdentifier="rse-enc", DestinationRegion="eu-west-1",
                                                   RetentionPeriod=3, ManualSnapshotRetentionPeriod=14,
                                                   SnapshotCopyGrantName="rse-grant")["Cluster"]
        expected = {"DestinationRegion": "eu-west-1", "RetentionPeriod": 3, "ManualSnapshotRetentionPeriod": 14,
                    "SnapshotCopyGrantName": "rse-grant"}
        self.assertEqual(cluster["ClusterSnapshotCopyStatus"], expected)
        described = self.rs_src.describe_clusters(ClusterIdentifier="rse-enc")["Clusters"][0]
        self.assertEqual(described["ClusterSnapshotCopyStatus"], expected)
        self.assertError("SnapshotCopyAlreadyEnabledFault", self.rs_src.enable_snapshot_copy,
                         ClusterIdentifier="rse-enc", DestinationRegion="eu-west-1", SnapshotCopyGrantName="rse-grant")
        self.assertError("InvalidSnapshotCopyGrantStateFault", self.rs_src_eu.delete_snapshot_copy_grant,
                         SnapshotCopyGrantName="rse-grant")
        plain = self.rs_src.enable_snapshot_copy(ClusterIdentifier="rse-plain", DestinationRegion="eu-west-1")
        self.assertEqual(plain["Cluster"]["ClusterSnapshotCopyStatus"],
                         {"DestinationRegion": "eu-west-1", "RetentionPeriod": 7, "ManualSnapshotRetentionPeriod": -1})
        for ident in ("rse-enc", "rse-plain"):
            self.assertNotIn("ClusterSnapshotCopyStatus",
                             self.rs_src.disable_snapshot_copy(ClusterIdentifier=ident)["Cluster"])
            self.assertError("SnapshotCopyAlreadyDisabledFault", self.rs_src.disable_snapshot_copy,
                             ClusterIdentifier=ident)
        self.assertError("ClusterNotFound", self.rs_src.disable_snapshot_copy, ClusterIdentifier="rse-none")
        self.rs_src_eu.delete_snapshot_copy_grant(SnapshotCopyGrantName="rse-grant")


class RedshiftRegionCopyTest(RedshiftTest):
    def test_encrypted_cluster_copies_with_the_grant_key(self) -> None:
        rs_cluster("rsx-db", kms_key_id=cmk(SOURCE), tags=[{"Key": "team", "Value": "data"}])
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsx-db", SnapshotIdentifier="rsx-before")
        self.rs_src_eu.create_snapshot_copy_grant(SnapshotCopyGrantName="rsx-grant", KmsKeyId=cmk(SOURCE, "eu-west-1"))
        self.rs_src.enable_snapshot_copy(ClusterIdentifier="rsx-db", DestinationRegion="eu-west-1",
                                         ManualSnapshotRetentionPeriod=21, SnapshotCopyGrantName="rsx-grant")
        control("/snapcourier/config", {"creating_reads": 1})
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsx-db", SnapshotIdentifier="rsx-1",
                                            ManualSnapshotRetentionPeriod=3, Tags=[{"Key": "k", "Value": "v"}])
        self.assertEqual(rs_snapshot(self.rs_src, "rsx-1")["Status"], "creating")
        self.assertEqual(rs_ids(self.rs_src_eu, ClusterIdentifier="rsx-db"), [])  # not before it is available
        source = rs_snapshot(self.rs_src, "rsx-1")
        self.assertEqual(source["Status"], "available")
        self.rs_src.authorize_snapshot_access(SnapshotIdentifier="rsx-1", AccountWithRestoreAccess=DEST)

        copy = rs_snapshot(self.rs_src_eu, "rsx-1")  # made as this request arrived
        for key, value in [("ClusterIdentifier", "rsx-db"), ("SnapshotType", "manual"), ("OwnerAccount", SOURCE),
                           ("SourceRegion", "us-east-1"), ("Encrypted", True), ("KmsKeyId", cmk(SOURCE, "eu-west-1")),
                           ("ManualSnapshotRetentionPeriod", 21), ("Tags", []), ("Status", "creating"),
                           ("SnapshotCreateTime", source["SnapshotCreateTime"]),
                           ("SnapshotArn", "arn:aws:redshift:eu-west-1:111111111111:snapshot:rsx-db/rsx-1")]:
            self.assertEqual(copy[key], value, key)
        self.assertNotIn("AccountsWithRestoreAccess", copy)  # the copy is not shared
        self.assertEqual(rs_snapshot(self.rs_src_eu, "rsx-1")["Status"], "available")
        self.assertEqual(rs_ids(self.rs_src_eu, ClusterIdentifier="rsx-db"), ["rsx-1"])  # not rsx-before
        self.assertNotIn("rsx-1", rs_ids(rs_client("destination", "eu-west-1"), OwnerAccount=SOURCE))

        # Deleting the source (after revoking) leaves the copy.
        self.rs_src.revoke_snapshot_access(SnapshotIdentifier="rsx-1", AccountWithRestoreAccess=DEST)
        self.rs_src.delete_cluster_snapshot(SnapshotIdentifier="rsx-1")
        self.assertEqual(rs_snapshot(self.rs_src_eu, "rsx-1")["Status"], "available")

        # A copy made by CopyClusterSnapshot is copied too; nothing after DisableSnapshotCopy.
        control("/snapcourier/config", {"creating_reads": 0})
        rs_insert({"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rsx-db",
                   "snapshot_type": "automated", "id": "rs:rsx-db-auto"})
        self.rs_src.copy_cluster_snapshot(SourceSnapshotIdentifier="rs:rsx-db-auto",
                                          TargetSnapshotIdentifier="rsx-kept")
        self.assertEqual(rs_snapshot(self.rs_src_eu, "rsx-kept")["SourceRegion"], "us-east-1")
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src_eu, "rs:rsx-db-auto")
        self.rs_src.disable_snapshot_copy(ClusterIdentifier="rsx-db")
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsx-db", SnapshotIdentifier="rsx-after")
        self.assertEqual(rs_ids(self.rs_src_eu, ClusterIdentifier="rsx-db"), ["rsx-1", "rsx-kept"])

    def test_unencrypted_cluster_copies_without_a_grant(self) -> None:
        rs_cluster("rsu-db", account=DEST, region="eu-west-1")
        dst_eu = rs_client("destination", "eu-west-1")
        dst_eu.enable_snapshot_copy(ClusterIdentifier="rsu-db", DestinationRegion="us-east-1")
        dst_eu.create_cluster_snapshot(ClusterIdentifier="rsu-db", SnapshotIdentifier="rsu-1")
        copy = rs_snapshot(self.rs_dst, "rsu-1")
        self.assertEqual((copy["Encrypted"], copy["SourceRegion"], copy["OwnerAccount"]), (False, "eu-west-1", DEST))
        self.assertNotIn("KmsKeyId", copy)
        self.assertEqual(copy["ManualSnapshotRetentionPeriod"], -1)
        # A stuck source is never copied while it is stuck.
        control("/snapcourier/config", {"stuck": ["^rsu-stuck$"]})
        dst_eu.create_cluster_snapshot(ClusterIdentifier="rsu-db", SnapshotIdentifier="rsu-stuck")
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_dst, "rsu-stuck")
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(rs_snapshot(dst_eu, "rsu-stuck")["Status"], "available")
        self.assertEqual(rs_snapshot(self.rs_dst, "rsu-stuck")["SourceRegion"], "eu-west-1")


class RedshiftControlTest(RedshiftTest):
    def test_insert_snapshots(self) -> None:
        rs_cluster("rsi-db", kms_key_id=cmk(DEST, "eu-west-1"), account=DEST, region="eu-west-1",
                   automated_snapshot=False)
        arns = rs_insert([
            {"kind": "redshift", "account": DEST, "region": "eu-west-1", "cluster": "rsi-db",
             "snapshot_type": "automated", "age_days": age} for age in (1, 2.5, 3)
        ] + [
            {"kind": "redshift", "account": DEST, "region": "eu-west-1", "id": "rsi-gone", "cluster": "gone-db",
             "created": "2025-06-01T12:00:00Z", "encrypted": True, "manual_snapshot_retention_period": 10,
             "source_region": "us-east-1", "tags": [{"Key": "a", "Value": "b"}], "shared_with": [SOURCE]},
            {"kind": "redshift", "account": DEST, "region": "eu-west-1", "id": "rsi-plain", "cluster": "rsi-db",
             "kms_key_id": None},
        ])["arns"]
        self.assertEqual(arns[3], "arn:aws:redshift:eu-west-1:222222222222:snapshot:gone-db/rsi-gone")
        eu = rs_client("destination", "eu-west-1")
        automated = eu.describe_cluster_snapshots(ClusterIdentifier="rsi-db", SnapshotType="automated")["Snapshots"]
        self.assertEqual(len(automated), 3)
        now = datetime.now(timezone.utc)
        for snap in automated:
            self.assertEqual(snap["SnapshotIdentifier"],
                             "rs:rsi-db-" + snap["SnapshotCreateTime"].strftime("%Y-%m-%d-%H-%M-%S"))
            self.assertEqual((snap["SnapshotType"], snap["KmsKeyId"]), ("automated", cmk(DEST, "eu-west-1")))
        self.assertEqual(sorted(round((now - s["SnapshotCreateTime"]).total_seconds() / 3600) for s in automated),
                         [24, 60, 72])
        gone = rs_snapshot(eu, "rsi-gone")
        self.assertEqual((gone["ClusterIdentifier"], gone["KmsKeyId"], gone["ManualSnapshotRetentionPeriod"],
                          gone["SourceRegion"], gone["AccountsWithRestoreAccess"], gone["Tags"]),
                         ("gone-db", default_redshift_key(DEST, "eu-west-1"), 10, "us-east-1",
                          [{"AccountId": SOURCE}], [{"Key": "a", "Value": "b"}]))
        self.assertEqual(gone["SnapshotCreateTime"], datetime(2025, 6, 1, 12, tzinfo=timezone.utc))
        self.assertFalse(rs_snapshot(eu, "rsi-plain")["Encrypted"])
        self.assertIn("rsi-gone", rs_ids(rs_client("source", "eu-west-1"), OwnerAccount=DEST))
        self.assertNotIn("gone-db", [c["ClusterIdentifier"] for c in eu.describe_clusters()["Clusters"]])

    def test_insert_validation_and_bulk_rollback(self) -> None:
        base = {"kind": "redshift", "account": SOURCE, "region": "us-east-1", "cluster": "rsiv-db"}
        for bad in ({"id": "rs:manual"}, {}, {"snapshot_type": "automated", "id": "auto-without-prefix"},
                    {"id": "x", "snapshot_type": "shared"}, {"id": "x", "shared_with": [SOURCE]},
                    {"id": "x", "shared_with": ["all"]}, {"id": "x", "shared_with": [f"{i:012d}" for i in range(21)]},
                    {"snapshot_type": "automated", "shared_with": [DEST]}, {"id": "x", "status": "deleted"},
                    {"id": "x", "created": "2026-01-01T00:00:00Z", "age_days": 1}, {"id": "x", "age_days": -1},
                    {"id": "x", "kms_key_id": None, "encrypted": True}, {"id": "x", "source_region": "us-east-1"},
                    {"id": "x", "manual_snapshot_retention_period": 0}, {"id": "x", "cluster": None}):
            self.assertEqual(control_error("/snapcourier/snapshots", {**base, **bad})[0], 400, bad)
        status, message = control_error("/snapcourier/snapshots", [
            {**base, "id": "rsiv-ok"},
            {"account": SOURCE, "region": "us-east-1", "id": "rsiv-rds-ok"},
            {**base, "id": "rsiv-bad", "created": "yesterday"},
        ])
        self.assertEqual((status, "created" in message), (400, True))
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src, "rsiv-ok")
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.src, "rsiv-rds-ok")
        rs_insert({**base, "id": "rsiv-once"})
        self.assertEqual(control_error("/snapcourier/snapshots", {**base, "id": "rsiv-once"})[0], 400)

    def test_counting_throttling_and_denies(self) -> None:
        rs_cluster("rsctl-db")
        control("/snapcourier/requests/reset", {})
        self.rs_src.describe_cluster_snapshots(ClusterIdentifier="rsctl-db")
        self.rs_dst.describe_clusters()
        control("/snapcourier/config", {"throttle_rate": 1.0, "throttle_services": ["redshift"]})
        err = self.assertError("Throttling", self.rs_src.create_cluster_snapshot, ClusterIdentifier="rsctl-db",
                               SnapshotIdentifier="rsctl-throttled")
        self.assertEqual((err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Message"]),
                         (400, "Rate exceeded"))
        self.src.describe_db_clusters(DBClusterIdentifier="orders-db")  # RDS is not throttled now
        control("/snapcourier/config", {"throttle_rate": 0.0})
        self.assertError("ClusterSnapshotNotFound", rs_snapshot, self.rs_src, "rsctl-throttled")
        counts = control("/snapcourier/requests")
        self.assertEqual(counts["by_action"]["redshift:DescribeClusterSnapshots"], 2)
        self.assertEqual(counts["by_account"][DEST]["by_action"], {"redshift:DescribeClusters": 1})
        self.assertEqual(counts["throttled"], {"total": 1, "by_action": {"redshift:CreateClusterSnapshot": 1}})

        for ident in ("rsctl-a", "rsctl-b"):
            self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsctl-db", SnapshotIdentifier=ident)
        control("/snapcourier/config", {"deny": [
            {"account": SOURCE, "action": "redshift:DeleteClusterSnapshot", "resource": "^rsctl-b$"},
            {"account": SOURCE, "action": "redshift:AuthorizeSnapshotAccess", "resource": "rsctl-b$"},
        ]})
        err = self.assertError("AccessDenied", self.rs_src.delete_cluster_snapshot, SnapshotIdentifier="rsctl-b")
        self.assertEqual(err.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.assertIn("redshift:DeleteClusterSnapshot on resource: rsctl-b with an explicit deny",
                      err.response["Error"]["Message"])
        arn = rs_snapshot(self.rs_src, "rsctl-b")["SnapshotArn"]
        self.assertError("AccessDenied", self.rs_src.authorize_snapshot_access, SnapshotArn=arn,
                         AccountWithRestoreAccess=DEST)
        self.rs_src.delete_cluster_snapshot(SnapshotIdentifier="rsctl-a")
        self.assertEqual(rs_snapshot(self.rs_src, "rsctl-b")["Status"], "available")
        control("/snapcourier/config", {"deny": []})
        self.rs_src.delete_cluster_snapshot(SnapshotIdentifier="rsctl-b")


# --- Restore drills -------------------------------------------------------------------

def network(role: str, name: str, region: str = "us-east-1") -> tuple[list[str], str]:
    """A VPC of the account with two subnets and a security group, as a drill's
    restore names them; returns (subnet ids, security group id)."""
    ec2 = client(role, "ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"{region}{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
    group = ec2.create_security_group(GroupName=name, Description="restore drill", VpcId=vpc)["GroupId"]
    return subnets, group


def statuses(describe: Any, key: str, field: str, count: int, **params: Any) -> list[str]:
    """The status `count` describe calls in a row report for one resource."""
    return [describe(**params)[key][0][field] for _ in range(count)]


def cluster_statuses(rds: Any, ident: str, count: int) -> list[str]:
    return statuses(rds.describe_db_clusters, "DBClusters", "Status", count, DBClusterIdentifier=ident)


def instance_statuses(rds: Any, ident: str, count: int) -> list[str]:
    return statuses(rds.describe_db_instances, "DBInstances", "DBInstanceStatus", count, DBInstanceIdentifier=ident)


DRILL_TAGS = [{"Key": "snapcourier:drill", "Value": "nightly"}]


class RdsRestoreTest(EmulatorTest):
    def restore_cluster(self, ident: str, snapshot: str, rds: Any = None, **params: Any) -> dict[str, Any]:
        return (rds or self.src).restore_db_cluster_from_snapshot(
            DBClusterIdentifier=ident, SnapshotIdentifier=snapshot, Engine="aurora-postgresql", **params)["DBCluster"]

    def add_instance(self, ident: str, cluster: str, rds: Any = None) -> dict[str, Any]:
        return (rds or self.src).create_db_instance(
            DBInstanceIdentifier=ident, DBClusterIdentifier=cluster, Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large", Tags=DRILL_TAGS)["DBInstance"]

    def test_aurora_restore_creating_then_available_and_deleted_instance_first(self) -> None:
        subnets, group = network("source", "drill-aurora")
        self.src.create_db_subnet_group(DBSubnetGroupName="drill-subnets", DBSubnetGroupDescription="drill",
                                        SubnetIds=subnets)
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="drill-src-1")
        arn = cluster_snapshot(self.src, "drill-src-1")["DBClusterSnapshotArn"]
        control("/snapcourier/config", {"restore_reads": 2})
        made = self.restore_cluster("drill-orders", arn, Tags=DRILL_TAGS, DBSubnetGroupName="drill-subnets",
                                    VpcSecurityGroupIds=[group], DeletionProtection=False)
        self.assertEqual(made["Status"], "creating")  # the restore's own answer, whatever the knob
        got = self.src.describe_db_clusters(DBClusterIdentifier="drill-orders")["DBClusters"][0]
        for key, value in [("Status", "creating"), ("TagList", DRILL_TAGS), ("StorageEncrypted", True),
                           ("KmsKeyId", cmk(SOURCE)),  # the snapshot's key: no KmsKeyId was given
                           ("DBSubnetGroup", "drill-subnets"), ("DeletionProtection", False),
                           ("VpcSecurityGroups", [{"VpcSecurityGroupId": group, "Status": "active"}]),
                           ("DBClusterArn", f"arn:aws:rds:us-east-1:{SOURCE}:cluster:drill-orders")]:
            self.assertEqual(got[key], value, key)
        self.assertEqual(cluster_statuses(self.src, "drill-orders", 2), ["creating", "available"])

        instance = self.add_instance("drill-orders-1", "drill-orders")
        self.assertEqual((instance["DBInstanceStatus"], instance["DBClusterIdentifier"]), ("creating", "drill-orders"))
        self.assertEqual(instance_statuses(self.src, "drill-orders-1", 3), ["creating", "creating", "available"])
        described = self.src.describe_db_instances(DBInstanceIdentifier="drill-orders-1")["DBInstances"][0]
        self.assertEqual((described["TagList"], described["KmsKeyId"]), (DRILL_TAGS, cmk(SOURCE)))
        members = self.src.describe_db_clusters(DBClusterIdentifier="drill-orders")["DBClusters"][0]["DBClusterMembers"]
        self.assertEqual([m["DBInstanceIdentifier"] for m in members], ["drill-orders-1"])

        # AWS: delete the instances first.
        self.assertError("InvalidDBClusterStateFault", self.src.delete_db_cluster, DBClusterIdentifier="drill-orders",
                         SkipFinalSnapshot=True)
        deleted = self.src.delete_db_instance(DBInstanceIdentifier="drill-orders-1", SkipFinalSnapshot=True,
                                              DeleteAutomatedBackups=True)["DBInstance"]
        self.assertEqual(deleted["DBInstanceStatus"], "deleting")
        self.assertError("DBInstanceNotFound", self.src.describe_db_instances, DBInstanceIdentifier="drill-orders-1")
        cluster = self.src.describe_db_clusters(DBClusterIdentifier="drill-orders")["DBClusters"][0]
        self.assertEqual(cluster["DBClusterMembers"], [])
        self.assertError("InvalidParameterCombination", self.src.delete_db_cluster, DBClusterIdentifier="drill-orders")
        gone = self.src.delete_db_cluster(DBClusterIdentifier="drill-orders", SkipFinalSnapshot=True)["DBCluster"]
        self.assertEqual(gone["Status"], "deleting")
        self.assertError("DBClusterNotFoundFault", self.src.describe_db_clusters, DBClusterIdentifier="drill-orders")
        # Its automated snapshot went with it; the snapshot restored from stays.
        left = self.src.describe_db_cluster_snapshots(DBClusterIdentifier="drill-orders")["DBClusterSnapshots"]
        self.assertEqual(left, [])
        self.assertEqual(cluster_snapshot(self.src, "drill-src-1")["Status"], "available")
        # The same identifier can be restored again.
        control("/snapcourier/config", {"restore_reads": 0})
        self.restore_cluster("drill-orders", "drill-src-1")
        self.assertEqual(cluster_statuses(self.src, "drill-orders", 1), ["available"])
        self.src.delete_db_cluster(DBClusterIdentifier="drill-orders", SkipFinalSnapshot=True)

    def test_aurora_restore_sources_keys_and_faults(self) -> None:
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="analytics-db",
                                            DBClusterSnapshotIdentifier="drill-plain")
        plain = self.restore_cluster("drill-plain-1", "drill-plain")  # by identifier
        self.assertFalse(plain["StorageEncrypted"])
        self.assertNotIn("KmsKeyId", plain)
        self.assertEqual(plain["TagList"], [])
        keyed = self.restore_cluster("drill-plain-2", "drill-plain", KmsKeyId="alias/snapcourier")
        self.assertEqual((keyed["StorageEncrypted"], keyed["KmsKeyId"]), (True, cmk(SOURCE)))
        # The destination restores its own snapshots (here one encrypted with its key), and one
        # shared with it by ARN; the cluster is the destination's.
        control("/snapcourier/snapshots", {"account": DEST, "region": "us-east-1", "id": "drill-dest-cmk",
                                           "resource_id": "gone-db", "kms_key_id": cmk(DEST)})
        restored = self.restore_cluster("drill-dest", "drill-dest-cmk", rds=self.dst, Tags=DRILL_TAGS)
        self.assertEqual((restored["KmsKeyId"], restored["DBClusterArn"], restored["TagList"]),
                         (cmk(DEST), f"arn:aws:rds:us-east-1:{DEST}:cluster:drill-dest", DRILL_TAGS))
        shared_arn = f"arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:drill-plain"
        self.assertError("DBClusterSnapshotNotFoundFault", self.restore_cluster, "drill-shared", shared_arn,
                         rds=self.dst)
        self.share("drill-plain")
        shared = self.restore_cluster("drill-shared", shared_arn, rds=self.dst)
        self.assertEqual(shared["DBClusterArn"], f"arn:aws:rds:us-east-1:{DEST}:cluster:drill-shared")

        self.assertError("DBClusterAlreadyExistsFault", self.restore_cluster, "drill-plain-1", "drill-plain")
        self.assertError("DBClusterSnapshotNotFoundFault", self.restore_cluster, "drill-x", "drill-none")
        self.assertError("DBClusterSnapshotNotFoundFault", self.restore_cluster, "drill-x",
                         f"arn:aws:rds:eu-west-1:{SOURCE}:cluster-snapshot:drill-plain")
        self.assertError("DBClusterSnapshotNotFoundFault", self.restore_cluster, "drill-x",
                         f"arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:drill-plain", rds=stranger())
        self.assertError("DBSubnetGroupNotFoundFault", self.restore_cluster, "drill-x", "drill-plain",
                         DBSubnetGroupName="no-such-subnets")
        self.assertError("KMSKeyNotAccessibleFault", self.restore_cluster, "drill-x", "drill-plain",
                         KmsKeyId="alias/no-such-key")
        control("/snapcourier/snapshots", {"account": SOURCE, "region": "us-east-1", "id": "drill-busy",
                                           "resource_id": "analytics-db", "status": "creating"})
        self.assertError("InvalidDBClusterSnapshotStateFault", self.restore_cluster, "drill-x", "drill-busy")
        self.assertError("DBClusterNotFoundFault", self.src.describe_db_clusters, DBClusterIdentifier="drill-x")
        for rds, ident in [(self.src, "drill-plain-1"), (self.src, "drill-plain-2"), (self.dst, "drill-dest"),
                           (self.dst, "drill-shared")]:
            rds.delete_db_cluster(DBClusterIdentifier=ident, SkipFinalSnapshot=True)

    def test_failed_restores_stay_until_deleted(self) -> None:
        control("/snapcourier/config", {"restore_reads": 1, "restore_failures": ["-broken$"]})
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="drill-src-2")
        self.restore_cluster("drill-broken", "drill-src-2")
        self.assertEqual(cluster_statuses(self.src, "drill-broken", 3), ["creating", "failed", "failed"])
        self.assertError("InvalidDBClusterStateFault", self.add_instance, "drill-broken-1", "drill-broken")
        self.assertError("InvalidDBClusterStateFault", self.src.delete_db_cluster, DBClusterIdentifier="drill-broken",
                         FinalDBSnapshotIdentifier="drill-broken-final")
        self.src.delete_db_cluster(DBClusterIdentifier="drill-broken", SkipFinalSnapshot=True)
        self.assertError("DBClusterNotFoundFault", self.src.describe_db_clusters, DBClusterIdentifier="drill-broken")

        # An instance into a healthy cluster can fail too; so can an instance restore.
        self.restore_cluster("drill-ok", "drill-src-2")
        self.add_instance("drill-ok-broken", "drill-ok")
        self.assertEqual(instance_statuses(self.src, "drill-ok-broken", 2), ["creating", "failed"])
        self.assertEqual(cluster_statuses(self.src, "drill-ok", 2), ["creating", "available"])
        self.src.delete_db_instance(DBInstanceIdentifier="drill-ok-broken")  # Aurora: no final snapshot rules
        self.src.delete_db_cluster(DBClusterIdentifier="drill-ok", SkipFinalSnapshot=True)
        self.src.create_db_snapshot(DBInstanceIdentifier="billing-pg", DBSnapshotIdentifier="drill-isrc-2")
        self.src.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="drill-pg-broken",
                                                      DBSnapshotIdentifier="drill-isrc-2")
        self.assertEqual(instance_statuses(self.src, "drill-pg-broken", 3), ["creating", "failed", "failed"])
        self.assertError("InvalidParameterCombination", self.src.delete_db_instance,
                         DBInstanceIdentifier="drill-pg-broken")
        self.assertError("InvalidDBInstanceState", self.src.delete_db_instance, DBInstanceIdentifier="drill-pg-broken",
                         FinalDBSnapshotIdentifier="drill-pg-final")
        self.src.delete_db_instance(DBInstanceIdentifier="drill-pg-broken", SkipFinalSnapshot=True,
                                    DeleteAutomatedBackups=True)
        self.assertError("DBInstanceNotFound", self.src.describe_db_instances, DBInstanceIdentifier="drill-pg-broken")
        self.assertEqual(self.src.describe_db_snapshots(DBInstanceIdentifier="drill-pg-broken")["DBSnapshots"], [])

    def test_stuck_restore_stays_creating_and_can_be_deleted(self) -> None:
        control("/snapcourier/config", {"stuck": ["^drill-stuck"]})
        self.src.create_db_cluster_snapshot(DBClusterIdentifier="billing-db", DBClusterSnapshotIdentifier="drill-src-3")
        self.restore_cluster("drill-stuck", "drill-src-3")
        self.add_instance("drill-stuck-1", "drill-stuck")
        self.assertEqual(set(cluster_statuses(self.src, "drill-stuck", 5)), {"creating"})
        self.assertEqual(set(instance_statuses(self.src, "drill-stuck-1", 5)), {"creating"})
        self.src.delete_db_instance(DBInstanceIdentifier="drill-stuck-1", SkipFinalSnapshot=True)
        self.src.delete_db_cluster(DBClusterIdentifier="drill-stuck", SkipFinalSnapshot=True)
        self.assertError("DBClusterNotFoundFault", self.src.describe_db_clusters, DBClusterIdentifier="drill-stuck")
        # Once the pattern is gone, a stuck restore completes on its next describe.
        self.restore_cluster("drill-stuck-2", "drill-src-3")
        self.assertEqual(cluster_statuses(self.src, "drill-stuck-2", 2), ["creating", "creating"])
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(cluster_statuses(self.src, "drill-stuck-2", 1), ["available"])
        self.src.delete_db_cluster(DBClusterIdentifier="drill-stuck-2", SkipFinalSnapshot=True)

    def test_instance_restore_own_and_shared(self) -> None:
        subnets, group = network("source", "drill-instance")
        self.src.create_db_subnet_group(DBSubnetGroupName="drill-isubnets", DBSubnetGroupDescription="drill",
                                        SubnetIds=subnets)
        self.src.create_db_snapshot(DBInstanceIdentifier="orders-mysql", DBSnapshotIdentifier="drill-isrc-1")
        control("/snapcourier/config", {"restore_reads": 1})
        made = self.src.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier="drill-mysql", DBSnapshotIdentifier="drill-isrc-1", DBInstanceClass="db.t3.small",
            DBSubnetGroupName="drill-isubnets", VpcSecurityGroupIds=[group], DeletionProtection=False,
            Tags=DRILL_TAGS)["DBInstance"]
        self.assertEqual(made["DBInstanceStatus"], "creating")
        self.assertEqual(instance_statuses(self.src, "drill-mysql", 2), ["creating", "available"])
        got = self.src.describe_db_instances(DBInstanceIdentifier="drill-mysql")["DBInstances"][0]
        for key, value in [("TagList", DRILL_TAGS), ("KmsKeyId", cmk(SOURCE)), ("StorageEncrypted", True),
                           ("DBInstanceClass", "db.t3.small"), ("DeletionProtection", False), ("Engine", "mysql"),
                           ("VpcSecurityGroups", [{"VpcSecurityGroupId": group, "Status": "active"}])]:
            self.assertEqual(got[key], value, key)
        self.assertEqual(got["DBSubnetGroup"]["DBSubnetGroupName"], "drill-isubnets")
        self.assertEqual(got["OptionGroupMemberships"][0]["OptionGroupName"], "app-opts")
        self.assertError("DBInstanceAlreadyExists", self.src.restore_db_instance_from_db_snapshot,
                         DBInstanceIdentifier="drill-mysql", DBSnapshotIdentifier="drill-isrc-1")
        self.assertError("DBSnapshotNotFound", self.src.restore_db_instance_from_db_snapshot,
                         DBInstanceIdentifier="drill-none", DBSnapshotIdentifier="drill-no-snapshot")

        # A snapshot shared with the destination restores there by ARN only; the option group it
        # names does not exist there, so the instance gets the engine's default group.
        self.src.modify_db_snapshot_attribute(DBSnapshotIdentifier="drill-isrc-1", AttributeName="restore",
                                              ValuesToAdd=[DEST])
        arn = f"arn:aws:rds:us-east-1:{SOURCE}:snapshot:drill-isrc-1"
        self.assertError("DBSnapshotNotFound", self.dst.restore_db_instance_from_db_snapshot,
                         DBInstanceIdentifier="drill-shared", DBSnapshotIdentifier="drill-isrc-1")
        shared = self.dst.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="drill-shared",
                                                               DBSnapshotIdentifier=arn)["DBInstance"]
        self.assertEqual(shared["DBInstanceArn"], f"arn:aws:rds:us-east-1:{DEST}:db:drill-shared")
        self.assertEqual(shared["OptionGroupMemberships"][0]["OptionGroupName"], "default:mysql-8-0")
        self.assertError("DBSnapshotNotFound", stranger().restore_db_instance_from_db_snapshot,
                         DBInstanceIdentifier="drill-stranger", DBSnapshotIdentifier=arn)
        self.dst.delete_db_instance(DBInstanceIdentifier="drill-shared", SkipFinalSnapshot=True)
        self.src.delete_db_instance(DBInstanceIdentifier="drill-mysql", SkipFinalSnapshot=True)
        self.src.modify_db_snapshot_attribute(DBSnapshotIdentifier="drill-isrc-1", AttributeName="restore",
                                              ValuesToRemove=[DEST])

    def test_reads_count_only_describes_that_include_the_restore(self) -> None:
        third = "333333333333"
        rds = stranger("eu-west-1")
        for i in range(20):
            control("/snapcourier/clusters", {"account": third, "region": "eu-west-1", "id": f"drill-page-{i:02d}"})
        control("/snapcourier/snapshots", {"account": third, "region": "eu-west-1", "id": "drill-page-src",
                                           "resource_id": "drill-page-00"})
        control("/snapcourier/config", {"restore_reads": 1})
        self.restore_cluster("drill-page-zz", "drill-page-src", rds=rds)
        first = rds.describe_db_clusters(MaxRecords=20)
        self.assertNotIn("drill-page-zz", [c["DBClusterIdentifier"] for c in first["DBClusters"]])
        second = rds.describe_db_clusters(MaxRecords=20, Marker=first["Marker"])
        self.assertEqual([(c["DBClusterIdentifier"], c["Status"]) for c in second["DBClusters"]],
                         [("drill-page-zz", "creating")])
        self.assertNotIn("Marker", second)
        self.assertEqual(cluster_statuses(rds, "drill-page-zz", 1), ["available"])


class RedshiftRestoreTest(RedshiftTest):
    def restore(self, rs: Any, ident: str, **params: Any) -> dict[str, Any]:
        return rs.restore_from_cluster_snapshot(ClusterIdentifier=ident, **params)["Cluster"]

    def cluster_statuses(self, rs: Any, ident: str, count: int) -> list[str]:
        return statuses(rs.describe_clusters, "Clusters", "ClusterStatus", count, ClusterIdentifier=ident)

    def test_restore_from_another_accounts_snapshot_only_when_authorized(self) -> None:
        rs_cluster("rsr-db", kms_key_id=cmk(SOURCE))
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsr-db", SnapshotIdentifier="rsr-snap")
        self.assertError("AccessToSnapshotDenied", self.restore, self.rs_dst, "rsr-drill",
                         SnapshotIdentifier="rsr-snap", OwnerAccount=SOURCE)
        self.assertError("ClusterSnapshotNotFound", self.restore, self.rs_dst, "rsr-drill",
                         SnapshotIdentifier="rsr-snap")  # without OwnerAccount: the caller's own
        self.assertError("ClusterSnapshotNotFound", self.restore, self.rs_dst, "rsr-drill",
                         SnapshotIdentifier="rsr-none", OwnerAccount=SOURCE)
        self.rs_src.authorize_snapshot_access(SnapshotIdentifier="rsr-snap", AccountWithRestoreAccess=DEST)

        subnets, group = network("destination", "rsr-drill")
        self.rs_dst.create_cluster_subnet_group(ClusterSubnetGroupName="rsr-subnets", Description="drill",
                                                SubnetIds=subnets)
        control("/snapcourier/config", {"restore_reads": 2})
        made = self.restore(self.rs_dst, "rsr-drill", SnapshotIdentifier="rsr-snap", OwnerAccount=SOURCE,
                            ClusterSubnetGroupName="rsr-subnets", VpcSecurityGroupIds=[group],
                            PubliclyAccessible=False)
        self.assertEqual(made["ClusterStatus"], "creating")
        arn = f"arn:aws:redshift:us-east-1:{DEST}:cluster:rsr-drill"
        self.assertEqual(made["Tags"], [])  # RestoreFromClusterSnapshot has no Tags: tag with CreateTags
        self.rs_dst.create_tags(ResourceName=arn, Tags=DRILL_TAGS)
        self.assertError("ResourceNotFoundFault", self.rs_src.create_tags, ResourceName=arn, Tags=DRILL_TAGS)
        got = self.rs_dst.describe_clusters(ClusterIdentifier="rsr-drill")["Clusters"][0]
        for key, value in [("ClusterStatus", "creating"), ("Tags", DRILL_TAGS), ("Encrypted", True),
                           ("KmsKeyId", cmk(SOURCE)), ("ClusterSubnetGroupName", "rsr-subnets"),
                           ("PubliclyAccessible", False),
                           ("VpcSecurityGroups", [{"VpcSecurityGroupId": group, "Status": "active"}])]:
            self.assertEqual(got[key], value, key)
        self.assertEqual(got["RestoreStatus"]["Status"], "restoring")
        self.assertEqual(self.cluster_statuses(self.rs_dst, "rsr-drill", 2), ["creating", "available"])
        got = self.rs_dst.describe_clusters(TagKeys=["snapcourier:drill"])["Clusters"]
        self.assertEqual([(c["ClusterIdentifier"], c["RestoreStatus"]["Status"]) for c in got],
                         [("rsr-drill", "completed")])
        self.assertError("ClusterNotFound", self.rs_src.describe_clusters, ClusterIdentifier="rsr-drill")

        # By ARN alone too; only in the snapshot's region; not once access is revoked.
        snapshot_arn = f"arn:aws:redshift:us-east-1:{SOURCE}:snapshot:rsr-db/rsr-snap"
        control("/snapcourier/config", {"restore_reads": 0})
        self.restore(self.rs_dst, "rsr-drill-arn", SnapshotArn=snapshot_arn)
        self.assertEqual(self.cluster_statuses(self.rs_dst, "rsr-drill-arn", 1), ["available"])
        self.assertError("ClusterSnapshotNotFound", self.restore, rs_client("destination", "eu-west-1"),
                         "rsr-drill-eu", SnapshotArn=snapshot_arn)
        self.assertError("ClusterAlreadyExists", self.restore, self.rs_dst, "rsr-drill", SnapshotArn=snapshot_arn)
        self.assertError("InvalidParameterCombination", self.restore, self.rs_dst, "rsr-drill-2",
                         SnapshotArn=snapshot_arn, SnapshotIdentifier="rsr-snap")
        self.rs_src.revoke_snapshot_access(SnapshotIdentifier="rsr-snap", AccountWithRestoreAccess=DEST)
        self.assertError("AccessToSnapshotDenied", self.restore, self.rs_dst, "rsr-drill-2", SnapshotArn=snapshot_arn)

        self.assertError("InvalidParameterCombination", self.rs_dst.delete_cluster, ClusterIdentifier="rsr-drill")
        for ident in ("rsr-drill", "rsr-drill-arn"):
            deleted = self.rs_dst.delete_cluster(ClusterIdentifier=ident, SkipFinalClusterSnapshot=True)["Cluster"]
            self.assertEqual(deleted["ClusterStatus"], "deleting")
            self.assertError("ClusterNotFound", self.rs_dst.describe_clusters, ClusterIdentifier=ident)
        self.assertEqual(rs_ids(self.rs_dst, ClusterIdentifier="rsr-drill"), [])  # its automated snapshot went too

    def test_own_snapshot_failed_and_stuck_restores(self) -> None:
        rs_cluster("rsf-src-db")
        self.rs_src.create_cluster_snapshot(ClusterIdentifier="rsf-src-db", SnapshotIdentifier="rsf-snap")
        control("/snapcourier/config", {"restore_reads": 1, "restore_failures": ["-broken$"],
                                         "stuck": ["^rsf-stuck"]})
        self.restore(self.rs_src, "rsf-ok", SnapshotIdentifier="rsf-snap")
        self.restore(self.rs_src, "rsf-broken", SnapshotIdentifier="rsf-snap")
        self.restore(self.rs_src, "rsf-stuck", SnapshotIdentifier="rsf-snap", SnapshotClusterIdentifier="rsf-src-db")
        self.assertEqual(self.cluster_statuses(self.rs_src, "rsf-ok", 3), ["creating", "available", "available"])
        self.assertEqual(self.cluster_statuses(self.rs_src, "rsf-broken", 3),
                         ["creating", "incompatible-restore", "incompatible-restore"])
        broken = self.rs_src.describe_clusters(ClusterIdentifier="rsf-broken")["Clusters"][0]
        self.assertEqual((broken["Encrypted"], broken["RestoreStatus"]["Status"]), (False, "failed"))
        self.assertEqual(set(self.cluster_statuses(self.rs_src, "rsf-stuck", 4)), {"creating"})
        self.assertError("InvalidClusterState", self.rs_src.delete_cluster, ClusterIdentifier="rsf-broken",
                         FinalClusterSnapshotIdentifier="rsf-broken-final")
        for ident in ("rsf-broken", "rsf-stuck"):
            self.rs_src.delete_cluster(ClusterIdentifier=ident, SkipFinalClusterSnapshot=True)
        # A final snapshot of an available restored cluster is kept.
        self.rs_src.delete_cluster(ClusterIdentifier="rsf-ok", FinalClusterSnapshotIdentifier="rsf-ok-final",
                                   FinalClusterSnapshotRetentionPeriod=7)
        final = rs_snapshot(self.rs_src, "rsf-ok-final")
        self.assertEqual((final["ClusterIdentifier"], final["SnapshotType"], final["ManualSnapshotRetentionPeriod"]),
                         ("rsf-ok", "manual", 7))
        self.assertEqual(rs_ids(self.rs_src, ClusterIdentifier="rsf-ok", SnapshotType="automated"), [])
        self.assertIn("rsf-snap", rs_ids(self.rs_src, ClusterIdentifier="rsf-src-db"))
        rs_insert({"kind": "redshift", "account": SOURCE, "region": "us-east-1", "id": "rsf-busy",
                   "cluster": "rsf-src-db", "status": "creating"})
        self.assertError("InvalidClusterSnapshotState", self.restore, self.rs_src, "rsf-x", SnapshotIdentifier="rsf-busy")
        self.assertError("ClusterSnapshotNotFound", self.restore, self.rs_src, "rsf-x", SnapshotIdentifier="rsf-snap",
                         SnapshotClusterIdentifier="other-db")
        self.assertError("ClusterSubnetGroupNotFoundFault", self.restore, self.rs_src, "rsf-x",
                         SnapshotIdentifier="rsf-snap", ClusterSubnetGroupName="no-such-subnets")
        self.assertError("InvalidParameterValue", self.restore, self.rs_src, "rsf-x",
                         SnapshotIdentifier="rsf-snap", KmsKeyId="alias/no-such-key")
        keyed = self.restore(self.rs_src, "rsf-keyed", SnapshotIdentifier="rsf-snap", KmsKeyId="alias/snapcourier")
        self.assertEqual((keyed["Encrypted"], keyed["KmsKeyId"]), (True, cmk(SOURCE)))
        self.rs_src.delete_cluster(ClusterIdentifier="rsf-keyed", SkipFinalClusterSnapshot=True)
        self.assertError("ClusterNotFound", self.rs_src.describe_clusters, ClusterIdentifier="rsf-x")


# --- Step Functions and Lambda routing ---------------------------------------------

class StandIn:
    """A stand-in for `cargo lambda watch` on 127.0.0.1: the same URL layout
    and the same answers (200 with the function's JSON result; HTTP 500 with
    {"errorType", "errorMessage"} and no X-Amz-Function-Error for a function
    error; 404 for an unknown binary). Binaries:

    - echo: returns its event (sleeping `sleep` seconds first, if given);
    - check: returns its event, or fails with ConfigInvalid when config is "bad";
    - work: {"id", "done": true} for an item; fails with Throttled the first
      time it sees an item with "flaky", and with the item's "fail" type if any.
    """

    BINARIES = ("echo", "check", "work")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any]] = []
        self.seen_flaky: set[Any] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("/")  # /2015-03-31/functions/NAME/invocations
                status, answer = stand_in.run(parts[3], json.loads(body))
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (the timeout test)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def run(self, binary: str, event: Any) -> tuple[int, Any]:
        if binary not in self.BINARIES:
            return 404, {"title": "Missing function", "detail": f"no binary {binary}"}
        with self.lock:
            self.calls.append((binary, event))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(binary, event)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, binary: str, event: Any) -> tuple[int, Any]:
        if binary == "echo":
            time.sleep(event.get("sleep", 0) if isinstance(event, dict) else 0)
            return 200, event
        if binary == "check":
            if event.get("config") == "bad":
                return 500, {"errorType": "ConfigInvalid", "errorMessage": "config is bad"}
            return 200, event
        time.sleep(0.3)  # long enough for Map iterations to overlap
        if event.get("fail"):
            return 500, {"errorType": event["fail"], "errorMessage": f"item {event['id']} failed"}
        if event.get("flaky"):
            with self.lock:
                first = event["id"] not in self.seen_flaky
                self.seen_flaky.add(event["id"])
            if first:
                return 500, {"errorType": "Throttled", "errorMessage": "Rate exceeded"}
        return 200, {"id": event["id"], "done": True}

    def count(self, binary: str) -> int:
        with self.lock:
            return sum(1 for name, _ in self.calls if name == binary)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def function_arn(name: str, account: str = SOURCE, region: str = "us-east-1") -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


# The pipeline the tests run: a Task whose ConfigInvalid is caught into a Fail
# state, a Wait of SecondsPath seconds, a Map over items with MaxConcurrencyPath
# whose Task retries Throttled, a Choice, an sns:publish, a Task naming the
# function by its ARN as Resource, and a Succeed. Functions are the account's.
def pipeline_definition(account: str) -> dict[str, Any]:
    return {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "check", "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [{"ErrorEquals": ["ConfigInvalid"], "ResultPath": "$.error", "Next": "Rejected"}],
                "Next": "Pause",
            },
            "Rejected": {"Type": "Fail", "Error": "Rejected", "Cause": "the configuration is invalid"},
            "Pause": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Work"},
            "Work": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.concurrency",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Do",
                    "States": {"Do": {
                        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": function_arn("work", account), "Payload.$": "$"},
                        "OutputPath": "$.Payload",
                        "Retry": [{"ErrorEquals": ["Throttled"], "IntervalSeconds": 1, "MaxAttempts": 2,
                                   "BackoffRate": 1.0}],
                        "End": True,
                    }},
                },
                "ResultPath": "$.results",
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.notify", "BooleanEquals": True, "Next": "Notify"}],
                "Default": "Echo",
            },
            "Notify": {
                "Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn.$": "$.topic", "Message.$": "$.results"},
                "ResultPath": "$.published",
                "Next": "Echo",
            },
            "Echo": {"Type": "Task", "Resource": function_arn("echo", account), "ResultPath": "$.echoed", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }


def wait_for_execution(sfn: Any, arn: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def event_details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


class StepFunctionsTest(EmulatorTest):
    stand_in: StandIn

    @classmethod
    def setUpClass(cls) -> None:
        cls.stand_in = StandIn()
        control("/snapcourier/lambda-routes", {
            "check": cls.stand_in.url,
            "echo": cls.stand_in.url,
            # work is routed for the source account only.
            function_arn("work"): cls.stand_in.url,
        })

    @classmethod
    def tearDownClass(cls) -> None:
        control("/snapcourier/lambda-routes", {"check": None, "echo": None, function_arn("work"): None})
        cls.stand_in.close()

    def setUp(self) -> None:
        super().setUp()
        self.sfn = client("source", "stepfunctions")

    def create_pipeline(self, name: str, role: str = "source") -> str:
        account = STATE["accounts"][role]["account_id"]
        return client(role, "stepfunctions").create_state_machine(
            name=name, definition=json.dumps(pipeline_definition(account)),
            roleArn=f"arn:aws:iam::{account}:role/snapcourier-states")["stateMachineArn"]

    def topic_with_queue(self, name: str, raw: bool = False) -> tuple[str, str]:
        sns, sqs = client("source", "sns"), client("source", "sqs")
        topic = sns.create_topic(Name=name)["TopicArn"]
        queue = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true" if raw else "false"})
        return topic, queue

    def test_pipeline_succeeds_with_retry_map_wait_and_sns(self) -> None:
        machine = self.create_pipeline("pipeline-ok")
        topic, queue = self.topic_with_queue("pipeline-ok")
        items = [{"id": 1}, {"id": 2, "flaky": True}, {"id": 3}, {"id": 4}]
        given = {"config": "ok", "wait": 1, "items": items, "concurrency": 2, "notify": True, "topic": topic}
        self.stand_in.max_in_flight = 0
        started = time.monotonic()
        execution = self.sfn.start_execution(stateMachineArn=machine, input=json.dumps(given))["executionArn"]
        # StartExecution returns at once: the execution runs in the background
        # while the server keeps answering.
        self.assertLess(time.monotonic() - started, 0.9)
        self.assertEqual(self.sfn.describe_execution(executionArn=execution)["status"], "RUNNING")
        client("source", "sts").get_caller_identity()

        done = wait_for_execution(self.sfn, execution)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        # Wait 1 s, then a retry 1 s after the Throttled failure.
        self.assertGreaterEqual((done["stopDate"] - done["startDate"]).total_seconds(), 2)
        output = json.loads(done["output"])
        self.assertEqual(output["results"], [{"id": i, "done": True} for i in (1, 2, 3, 4)])
        self.assertEqual(output["echoed"]["results"], output["results"])
        self.assertEqual(json.loads(done["input"]), given)
        self.assertTrue(execution.startswith(f"arn:aws:states:us-east-1:{SOURCE}:execution:pipeline-ok:"))
        self.assertNotEqual(done["name"], "None")
        self.assertEqual(self.stand_in.max_in_flight, 2)  # MaxConcurrencyPath

        events = history(self.sfn, execution)
        types = [e["type"] for e in events]
        self.assertEqual(types.count("MapIterationStarted"), 4)
        self.assertEqual(types.count("MapIterationSucceeded"), 4)
        self.assertIn("WaitStateEntered", types)
        failed = [event_details(e) for e in events if e["type"] == "TaskFailed"]
        self.assertEqual(len(failed), 1)  # the flaky item's first attempt, then retried
        self.assertEqual(failed[0]["error"], "Throttled")
        self.assertEqual(json.loads(failed[0]["cause"]), {"errorType": "Throttled", "errorMessage": "Rate exceeded"})
        self.assertEqual(types.count("TaskSucceeded"), 1 + 4 + 1)  # Check, the items, Notify
        self.assertEqual(types.count("LambdaFunctionSucceeded"), 1)  # Echo, by ARN
        self.assertEqual(types[-1], "ExecutionSucceeded")

        # The sns:publish Task ran in the source account: its topic is there,
        # and the queue subscribed to it got the SNS envelope.
        messages = client("source", "sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
        envelope = json.loads(messages[0]["Body"])
        self.assertEqual((envelope["Type"], envelope["TopicArn"]), ("Notification", topic))
        self.assertEqual(json.loads(envelope["Message"]), output["results"])

    def test_caught_error_goes_to_fail_state(self) -> None:
        machine = self.create_pipeline("pipeline-bad")
        execution = self.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"config": "bad"}))
        done = wait_for_execution(self.sfn, execution["executionArn"])
        self.assertEqual((done["status"], done["error"], done["cause"]),
                         ("FAILED", "Rejected", "the configuration is invalid"))
        events = history(self.sfn, execution["executionArn"])
        failed = [event_details(e) for e in events if e["type"] == "TaskFailed"]
        self.assertEqual([(f["error"], f["resourceType"], f["resource"]) for f in failed],
                         [("ConfigInvalid", "lambda", "invoke")])
        self.assertEqual(json.loads(failed[0]["cause"])["errorMessage"], "config is bad")
        self.assertEqual([e["type"] for e in events][-2:], ["FailStateEntered", "ExecutionFailed"])

    def test_uncaught_task_error_fails_execution(self) -> None:
        machine = self.create_pipeline("pipeline-boom")
        given = {"config": "ok", "wait": 0, "items": [{"id": 7, "fail": "SnapshotGone"}], "concurrency": 1,
                 "notify": False}
        execution = self.sfn.start_execution(stateMachineArn=machine, name="boom-1", input=json.dumps(given))
        self.assertTrue(execution["executionArn"].endswith(":pipeline-boom:boom-1"))
        done = wait_for_execution(self.sfn, execution["executionArn"])
        self.assertEqual((done["status"], done["error"]), ("FAILED", "SnapshotGone"))
        self.assertEqual(json.loads(done["cause"]), {"errorType": "SnapshotGone", "errorMessage": "item 7 failed"})
        types = [e["type"] for e in history(self.sfn, execution["executionArn"])]
        self.assertIn("MapIterationFailed", types)
        self.assertEqual(types[-1], "ExecutionFailed")

    def test_choice_default_and_zero_wait(self) -> None:
        machine = self.create_pipeline("pipeline-quiet")
        started = time.monotonic()
        execution = self.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
            {"config": "ok", "wait": 0, "items": [], "concurrency": 0, "notify": False}))["executionArn"]
        done = wait_for_execution(self.sfn, execution)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertLess(time.monotonic() - started, 5)
        entered = [event_details(e)["name"] for e in history(self.sfn, execution) if e["type"].endswith("StateEntered")]
        self.assertEqual(entered, ["Check", "Pause", "Work", "Route", "Echo", "Done"])

    def test_executions_belong_to_their_account(self) -> None:
        machine = self.create_pipeline("pipeline-mine")
        quiet = json.dumps({"config": "ok", "wait": 0, "items": [], "concurrency": 0, "notify": False})
        first = self.sfn.start_execution(stateMachineArn=machine, input=quiet)["executionArn"]
        second = self.sfn.start_execution(stateMachineArn=machine, input=quiet)["executionArn"]
        self.assertNotEqual(first, second)  # unnamed executions get distinct names
        for arn in (first, second):
            self.assertEqual(wait_for_execution(self.sfn, arn)["status"], "SUCCEEDED")
        listed = self.sfn.list_executions(stateMachineArn=machine)["executions"]
        self.assertEqual({e["executionArn"] for e in listed}, {first, second})
        self.assertTrue(all(e["status"] == "SUCCEEDED" and e["startDate"] for e in listed))

        other = client("destination", "stepfunctions")
        self.assertNotIn(machine, [m["stateMachineArn"] for m in other.list_state_machines()["stateMachines"]])
        self.assertError("ExecutionDoesNotExist", other.describe_execution, executionArn=first)
        self.assertError("StateMachineDoesNotExist", other.list_executions, stateMachineArn=machine)
        # The same name in the destination account is another machine, with
        # executions of its own.
        theirs = self.create_pipeline("pipeline-mine", role="destination")
        self.assertEqual(other.list_executions(stateMachineArn=theirs)["executions"], [])

    def test_service_calls_run_in_the_state_machine_account(self) -> None:
        control("/snapcourier/requests/reset", {})
        machine = self.create_pipeline("pipeline-dest", role="destination")
        dest = client("destination", "stepfunctions")
        execution = dest.start_execution(stateMachineArn=machine, input=json.dumps(
            {"config": "ok", "wait": 0, "items": [{"id": 1}], "concurrency": 1, "notify": False}))["executionArn"]
        done = wait_for_execution(dest, execution)
        # Check and Echo are routed by name for every account; work is routed
        # only for the source account, so in the destination it is a function
        # that does not exist.
        self.assertEqual((done["status"], done["error"]), ("FAILED", "Lambda.ResourceNotFoundException"), done)
        by_account = control("/snapcourier/requests")["by_account"]
        self.assertEqual(by_account[DEST]["by_action"]["lambda:Invoke"], 2)
        self.assertNotIn("lambda:Invoke", by_account.get(SOURCE, {}).get("by_action", {}))
        self.assertNotIn("123456789012", by_account)

    def test_describe_execution_with_timestamps_in_output(self) -> None:
        definition = {"StartAt": "Describe", "States": {"Describe": {
            "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:describeStateMachine",
            # moto's aws-sdk integration wants the boto3 (here camelCase) parameter names.
            "Parameters": {"stateMachineArn.$": "$$.StateMachine.Id"}, "End": True}}}
        machine = self.sfn.create_state_machine(name="describe-self", definition=json.dumps(definition),
                                                roleArn=f"arn:aws:iam::{SOURCE}:role/x")["stateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=machine)["executionArn"]
        done = wait_for_execution(self.sfn, execution)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        output = json.loads(done["output"])
        self.assertEqual(output["stateMachineArn"], machine)  # described in the machine's own account
        datetime.fromisoformat(output["creationDate"])

    def test_long_running_function(self) -> None:
        definition = {"StartAt": "Slow", "States": {"Slow": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn("echo"), "Payload": {"sleep": 3}},
            "OutputPath": "$.Payload", "End": True}}}
        machine = self.sfn.create_state_machine(name="slow", definition=json.dumps(definition),
                                                roleArn=f"arn:aws:iam::{SOURCE}:role/x")["stateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=machine)["executionArn"]
        self.assertEqual(self.sfn.describe_execution(executionArn=execution)["status"], "RUNNING")
        done = wait_for_execution(self.sfn, execution)
        self.assertEqual((done["status"], json.loads(done["output"])), ("SUCCEEDED", {"sleep": 3}))


class LambdaRoutingTest(EmulatorTest):
    stand_in: StandIn

    @classmethod
    def setUpClass(cls) -> None:
        cls.stand_in = StandIn()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.stand_in.close()

    def tearDown(self) -> None:
        control("/snapcourier/lambda-routes", {key: None for key in control("/snapcourier/lambda-routes")})
        super().tearDown()

    def test_invoke_api(self) -> None:
        table = control("/snapcourier/lambda-routes", {"check": self.stand_in.url,
                                                       "renamed": {"url": self.stand_in.url, "binary": "echo"}})
        self.assertEqual(table, {"check": self.stand_in.url, "renamed": {"url": self.stand_in.url, "binary": "echo"}})
        self.assertEqual(control("/snapcourier/lambda-routes"), table)
        # An SDK client with its usual retries: a function error must not be retried.
        lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=STATE["endpoint"],
                           aws_access_key_id=STATE["accounts"]["source"]["access_key_id"],
                           aws_secret_access_key=STATE["accounts"]["source"]["secret_access_key"])
        for name in ("check", function_arn("check"), f"{SOURCE}:function:check", "check:$LATEST"):
            answer = lam.invoke(FunctionName=name, Payload=json.dumps({"config": "ok", "n": 1}))
            self.assertEqual(answer["StatusCode"], 200, name)
            self.assertNotIn("FunctionError", answer)
            self.assertEqual(json.loads(answer["Payload"].read()), {"config": "ok", "n": 1})
        self.assertEqual(json.loads(lam.invoke(FunctionName="renamed", Payload=b'{"x": 1}')["Payload"].read()),
                         {"x": 1})
        self.assertEqual(json.loads(lam.invoke(FunctionName="renamed")["Payload"].read()), {})  # no payload: {}

        before = self.stand_in.count("check")
        failed = lam.invoke(FunctionName="check", Payload=json.dumps({"config": "bad"}))
        self.assertEqual((failed["StatusCode"], failed["FunctionError"]), (200, "Unhandled"))
        self.assertEqual(json.loads(failed["Payload"].read()),
                         {"errorType": "ConfigInvalid", "errorMessage": "config is bad"})
        self.assertEqual(self.stand_in.count("check"), before + 1)

        self.assertEqual(lam.invoke(FunctionName="check", InvocationType="Event", Payload=b"{}")["StatusCode"], 202)
        self.assertEqual(lam.invoke(FunctionName="check", InvocationType="DryRun")["StatusCode"], 204)

    def test_missing_binary_unreachable_host_and_unrouted(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        control("/snapcourier/lambda-routes", {"nobinary": self.stand_in.url,
                                               "nohost": f"http://127.0.0.1:{closed_port}"})
        lam = client("source", "lambda")
        error = self.assertError("ResourceNotFoundException", lam.invoke, FunctionName="nobinary")
        self.assertIn(function_arn("nobinary"), str(error))
        self.assertError("ServiceException", lam.invoke, FunctionName="nohost")
        # Not routed: moto's own Lambda answers, and it does not know the function.
        self.assertError("ResourceNotFoundException", lam.invoke, FunctionName="unrouted")

    def test_timeout(self) -> None:
        control("/snapcourier/lambda-routes", {"slow": {"url": self.stand_in.url, "binary": "echo", "timeout": 1}})
        started = time.monotonic()
        answer = client("source", "lambda").invoke(FunctionName="slow", Payload=b'{"sleep": 3}')
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(answer["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(answer["Payload"].read()),
                         {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"})

    def test_routes_by_arn_are_per_account(self) -> None:
        control("/snapcourier/lambda-routes", {function_arn("check", DEST): self.stand_in.url})
        answer = client("destination", "lambda").invoke(FunctionName="check", Payload=b'{"who": "dest"}')
        self.assertEqual(json.loads(answer["Payload"].read()), {"who": "dest"})
        self.assertError("ResourceNotFoundException", client("source", "lambda").invoke, FunctionName="check")
        self.assertError("ResourceNotFoundException", client("destination", "lambda", "eu-west-1").invoke,
                         FunctionName="check")

    def test_route_validation(self) -> None:
        for bad in ({"take": "http://10.0.0.1:9000"}, {"take": "https://127.0.0.1:9000"}, {"take": 9000},
                    {"bad name!": "http://127.0.0.1:9000"}, {function_arn("take") + ":1": "http://127.0.0.1:1"},
                    {"take": {"url": "http://127.0.0.1:1", "binary": "a/b"}},
                    {"take": {"url": "http://127.0.0.1:1", "timeout": 0}},
                    {"take": {"url": "http://127.0.0.1:1", "extra": 1}}, ["take"]):
            self.assertEqual(control_error("/snapcourier/lambda-routes", bad)[0], 400, bad)
        self.assertEqual(control("/snapcourier/lambda-routes"), {})
        control("/snapcourier/lambda-routes", {"take": "http://localhost:9000"})
        self.assertEqual(control("/snapcourier/lambda-routes", {"take": None}), {})


# --- ElastiCache and S3 ------------------------------------------------------------

SERVICE = "us-east-1.elasticache-snapshot.amazonaws.com"
EXPORT_GRANTS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, actions: list[str], *resources: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": list(resources)}


def sha256_b64(body: bytes) -> str:
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class ElastiCacheTest(EmulatorTest):
    def setUp(self) -> None:
        super().setUp()
        self.ec = client("source", "elasticache")
        self.s3 = client("source", "s3")
        self.ds3 = client("destination", "s3")

    def export_bucket(self, name: str, grants: list[str] | None = None, kms_key: str | None = None,
                      *extra: dict[str, Any]) -> None:
        """A source bucket in us-east-1 whose policy grants the ElastiCache service `grants`."""
        self.s3.create_bucket(Bucket=name)
        statements = [allow({"Service": SERVICE}, grants if grants is not None else EXPORT_GRANTS,
                            f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"), *extra]
        self.s3.put_bucket_policy(Bucket=name, Policy=policy(*statements))
        if kms_key:
            self.s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}}]})

    def snapshot(self, group: str, name: str) -> dict[str, Any]:
        return self.ec.create_snapshot(ReplicationGroupId=group, SnapshotName=name)["Snapshot"]

    def body(self, bucket: str, key: str, s3: Any = None) -> bytes:
        return (s3 or self.s3).get_object(Bucket=bucket, Key=key)["Body"].read()

    def group(self, ident: str, **spec: Any) -> str:
        return control("/snapcourier/clusters", {"kind": "elasticache", "account": SOURCE, "region": "us-east-1",
                                                 "id": ident, **spec})["arn"]


class ElastiCacheDescribeTest(ElastiCacheTest):
    def test_demo_caches_cluster_modes_and_tags(self) -> None:
        groups = {g["ReplicationGroupId"]: g for g in self.ec.describe_replication_groups()["ReplicationGroups"]}
        self.assertLessEqual({"sessions-valkey", "carts-valkey", "legacy-redis", "tiny-redis"}, set(groups))
        sessions, carts = groups["sessions-valkey"], groups["carts-valkey"]
        self.assertEqual((sessions["ClusterEnabled"], sessions["MemberClusters"]),
                         (False, ["sessions-valkey-001", "sessions-valkey-002"]))
        self.assertEqual((carts["ClusterEnabled"], len(carts["NodeGroups"]), len(carts["MemberClusters"])),
                         (True, 3, 6))
        self.assertEqual(groups["legacy-redis"]["Engine"], "redis")
        self.assertNotIn("Tags", sessions)  # tags are not inline: ListTagsForResource
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=sessions["ARN"])["TagList"],
                         [{"Key": "team", "Value": "web"}])
        serverless = self.ec.describe_serverless_caches(ServerlessCacheName="profiles-serverless")["ServerlessCaches"]
        self.assertEqual((serverless[0]["Status"], serverless[0]["Engine"]), ("available", "valkey"))
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=serverless[0]["ARN"])["TagList"],
                         [{"Key": "team", "Value": "identity"}])
        self.assertError("ReplicationGroupNotFoundFault", self.ec.list_tags_for_resource,
                         ResourceName=f"arn:aws:elasticache:us-east-1:{SOURCE}:replicationgroup:nope")
        self.assertError("InvalidARN", client("destination", "elasticache").list_tags_for_resource,
                         ResourceName=sessions["ARN"])
        self.assertError("ReplicationGroupNotFoundFault", self.ec.describe_replication_groups, ReplicationGroupId="nope")
        self.assertError("ServerlessCacheNotFoundFault", self.ec.describe_serverless_caches, ServerlessCacheName="no")

    def test_paging(self) -> None:
        for n in range(22):
            self.group(f"page-rg-{n:02d}", replicas=0)
        seen, marker = [], None
        while True:
            page = self.ec.describe_replication_groups(MaxRecords=20, **({"Marker": marker} if marker else {}))
            seen += [g["ReplicationGroupId"] for g in page["ReplicationGroups"]]
            marker = page.get("Marker")
            if not marker:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertLessEqual({f"page-rg-{n:02d}" for n in range(22)}, set(seen))
        self.assertError("InvalidParameterValue", self.ec.describe_replication_groups, MaxRecords=10)
        self.assertError("InvalidParameterValue", self.ec.describe_snapshots, MaxRecords=51)
        for n in range(3):
            self.snapshot("page-rg-00", f"page-snap-{n}")
        first = self.ec.describe_snapshots(ReplicationGroupId="page-rg-00", MaxRecords=20)
        self.assertEqual([s["SnapshotName"] for s in first["Snapshots"]], [f"page-snap-{n}" for n in range(3)])
        self.assertNotIn("Marker", first)
        for n in range(3):
            self.ec.create_serverless_cache_snapshot(ServerlessCacheName="profiles-serverless",
                                                     ServerlessCacheSnapshotName=f"page-sl-{n}")
        page = self.ec.describe_serverless_cache_snapshots(ServerlessCacheName="profiles-serverless", MaxResults=2)
        rest = self.ec.describe_serverless_cache_snapshots(ServerlessCacheName="profiles-serverless",
                                                           NextToken=page["NextToken"])
        names = [s["ServerlessCacheSnapshotName"] for s in page["ServerlessCacheSnapshots"] +
                 rest["ServerlessCacheSnapshots"]]
        self.assertLessEqual({f"page-sl-{n}" for n in range(3)}, set(names))
        self.assertNotIn("NextToken", rest)

    def test_control_route_validation(self) -> None:
        for bad in [{"id": "v1", "engine": "memcached"}, {"id": "v2", "shards": 2},
                    {"id": "v3", "replicas": 6}, {"id": "v4", "status": "sleepy"},
                    {"id": "v5", "serverless": True, "shards": 2}, {"id": "sessions-valkey"}]:
            code, _ = control_error("/snapcourier/clusters", {"kind": "elasticache", "account": SOURCE,
                                                              "region": "us-east-1", **bad})
            self.assertEqual(code, 400, bad)
        arn = self.group("route-sl", serverless=True, keys_per_shard=3)
        self.assertEqual(arn, f"arn:aws:elasticache:us-east-1:{SOURCE}:serverlesscache:route-sl")


class ElastiCacheSnapshotTest(ElastiCacheTest):
    def test_create_takes_replicas_and_goes_through_creating(self) -> None:
        control("/snapcourier/config", {"creating_reads": 1})
        answer = self.ec.create_snapshot(ReplicationGroupId="carts-valkey", SnapshotName="Carts-Snap-1",
                                         Tags=[{"Key": "snapcourier:plan", "Value": "daily"}])["Snapshot"]
        self.assertEqual((answer["SnapshotName"], answer["SnapshotStatus"]), ("carts-snap-1", "creating"))
        nodes = answer["NodeSnapshots"]
        self.assertEqual([(n["NodeGroupId"], n["CacheClusterId"]) for n in nodes],
                         [(f"000{i}", f"carts-valkey-000{i}-002") for i in (1, 2, 3)])
        described = lambda: self.ec.describe_snapshots(SnapshotName="carts-snap-1")["Snapshots"][0]  # noqa: E731
        self.assertEqual(described()["SnapshotStatus"], "creating")
        self.assertError("InvalidSnapshotState", self.ec.delete_snapshot, SnapshotName="carts-snap-1")
        self.assertEqual(described()["SnapshotStatus"], "available")
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=answer["ARN"])["TagList"],
                         [{"Key": "snapcourier:plan", "Value": "daily"}])
        sessions = self.snapshot("sessions-valkey", "sessions-snap-1")
        self.assertEqual(sessions["CacheClusterId"], "sessions-valkey-002")  # the replica
        legacy = self.snapshot("legacy-redis", "legacy-snap-1")
        self.assertEqual(legacy["CacheClusterId"], "legacy-redis-001")  # no replica: the primary

    def test_faults_and_stuck(self) -> None:
        self.snapshot("legacy-redis", "dup-snap")
        self.assertError("SnapshotAlreadyExistsFault", self.snapshot, "legacy-redis", "dup-snap")
        error = self.assertError("SnapshotFeatureNotSupportedFault", self.snapshot, "tiny-redis", "tiny-snap")
        self.assertIn("cache.t1.micro", str(error))
        self.assertError("ReplicationGroupNotFoundFault", self.snapshot, "no-such-group", "x-snap")
        control("/snapcourier/config", {"stuck": ["^stuck-"]})
        self.snapshot("legacy-redis", "stuck-snap")
        for _ in range(2):
            self.assertEqual(self.ec.describe_snapshots(SnapshotName="stuck-snap")["Snapshots"][0]["SnapshotStatus"],
                             "creating")
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(self.ec.describe_snapshots(SnapshotName="stuck-snap")["Snapshots"][0]["SnapshotStatus"],
                         "available")
        self.ec.delete_snapshot(SnapshotName="stuck-snap")
        self.assertError("SnapshotNotFoundFault", self.ec.describe_snapshots, SnapshotName="stuck-snap")

    def test_copy_within_elasticache(self) -> None:
        self.snapshot("sessions-valkey", "copy-src")
        copied = self.ec.copy_snapshot(SourceSnapshotName="copy-src", TargetSnapshotName="copy-dst",
                                       Tags=[{"Key": "k", "Value": "v"}])["Snapshot"]
        self.assertEqual((copied["SnapshotName"], copied["SnapshotStatus"]), ("copy-dst", "creating"))
        self.assertEqual(self.ec.describe_snapshots(SnapshotName="copy-dst")["Snapshots"][0]["SnapshotStatus"],
                         "available")
        self.assertError("SnapshotAlreadyExistsFault", self.ec.copy_snapshot, SourceSnapshotName="copy-src",
                         TargetSnapshotName="copy-dst")
        self.assertError("SnapshotNotFoundFault", self.ec.copy_snapshot, SourceSnapshotName="nope",
                         TargetSnapshotName="x")

    def test_serverless_snapshots(self) -> None:
        control("/snapcourier/config", {"creating_reads": 1})
        answer = self.ec.create_serverless_cache_snapshot(
            ServerlessCacheName="profiles-serverless", ServerlessCacheSnapshotName="Profiles-1",
            Tags=[{"Key": "a", "Value": "b"}])["ServerlessCacheSnapshot"]
        self.assertEqual((answer["ServerlessCacheSnapshotName"], answer["Status"]), ("profiles-1", "creating"))
        self.assertEqual(answer["ServerlessCacheConfiguration"]["ServerlessCacheName"], "profiles-serverless")
        describe = lambda: self.ec.describe_serverless_cache_snapshots(  # noqa: E731
            ServerlessCacheSnapshotName="profiles-1")["ServerlessCacheSnapshots"][0]["Status"]
        self.assertEqual(describe(), "creating")
        self.assertError("InvalidServerlessCacheSnapshotStateFault", self.ec.delete_serverless_cache_snapshot,
                         ServerlessCacheSnapshotName="profiles-1")
        self.assertEqual(describe(), "available")
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=answer["ARN"])["TagList"],
                         [{"Key": "a", "Value": "b"}])
        self.assertError("ServerlessCacheSnapshotAlreadyExistsFault", self.ec.create_serverless_cache_snapshot,
                         ServerlessCacheName="profiles-serverless", ServerlessCacheSnapshotName="profiles-1")
        self.assertError("ServerlessCacheNotFoundFault", self.ec.create_serverless_cache_snapshot,
                         ServerlessCacheName="nope", ServerlessCacheSnapshotName="profiles-2")
        gone = self.ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="profiles-1")
        self.assertEqual(gone["ServerlessCacheSnapshot"]["Status"], "deleting")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.describe_serverless_cache_snapshots,
                         ServerlessCacheSnapshotName="profiles-1")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.list_tags_for_resource,
                         ResourceName=answer["ARN"])

    def test_delete_replication_group_with_final_snapshot(self) -> None:
        arn = self.group("doomed-rg", tags=[{"Key": "x", "Value": "y"}])
        answer = self.ec.delete_replication_group(ReplicationGroupId="doomed-rg",
                                                  FinalSnapshotIdentifier="doomed-final")
        self.assertEqual(answer["ReplicationGroup"]["Status"], "deleting")
        self.assertError("ReplicationGroupNotFoundFault", self.ec.describe_replication_groups,
                         ReplicationGroupId="doomed-rg")
        final = self.ec.describe_snapshots(SnapshotName="doomed-final")["Snapshots"][0]
        self.assertEqual((final["ReplicationGroupId"], final["SnapshotStatus"]), ("doomed-rg", "available"))
        self.group("doomed-rg")  # same name again: the old group's tags are gone
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=arn)["TagList"], [])
        self.assertError("ReplicationGroupNotFoundFault", self.ec.delete_replication_group, ReplicationGroupId="nope")


class ElastiCacheExportTest(ElastiCacheTest):
    def test_export_writes_one_rdb_object_per_shard(self) -> None:
        self.export_bucket("ec-export-a", kms_key=cmk(SOURCE))
        self.snapshot("carts-valkey", "carts-exp-1")
        answer = self.ec.copy_snapshot(SourceSnapshotName="carts-exp-1", TargetSnapshotName="carts-exp-1",
                                       TargetBucket="ec-export-a")["Snapshot"]
        self.assertEqual(answer["SnapshotStatus"], "copying")
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="ec-export-a")["Contents"]]
        self.assertEqual(keys, ["carts-exp-1-0001.rdb", "carts-exp-1-0002.rdb", "carts-exp-1-0003.rdb"])
        head = self.s3.head_object(Bucket="ec-export-a", Key="carts-exp-1-0002.rdb", ChecksumMode="ENABLED")
        body = self.body("ec-export-a", "carts-exp-1-0002.rdb")
        self.assertTrue(body.startswith(b"REDIS0011"))
        self.assertEqual((head["ContentLength"], head["ChecksumSHA256"]), (len(body), sha256_b64(body)))
        self.assertEqual((head["ServerSideEncryption"], head["SSEKMSKeyId"]), ("aws:kms", cmk(SOURCE)))
        # Deterministic: the same data exports the same bytes; shards differ.
        self.snapshot("carts-valkey", "carts-exp-2")
        self.ec.copy_snapshot(SourceSnapshotName="carts-exp-2", TargetSnapshotName="again",
                              TargetBucket="ec-export-a")
        self.assertEqual(self.body("ec-export-a", "again-0002.rdb"), body)
        self.assertNotEqual(self.body("ec-export-a", "again-0001.rdb"), body)
        self.snapshot("sessions-valkey", "sessions-exp-1")
        self.ec.copy_snapshot(SourceSnapshotName="sessions-exp-1", TargetSnapshotName="sessions-exp-1",
                              TargetBucket="ec-export-a")
        self.assertTrue(self.body("ec-export-a", "sessions-exp-1-0001.rdb").startswith(b"REDIS"))
        self.assertError("InvalidParameterValue", self.ec.copy_snapshot, SourceSnapshotName="sessions-exp-1",
                         TargetSnapshotName="sessions-exp-1", TargetBucket="ec-export-a")

    def test_export_phase_writes_objects_when_done(self) -> None:
        self.export_bucket("ec-export-phase")
        self.snapshot("legacy-redis", "phase-snap")
        control("/snapcourier/config", {"creating_reads": 1})
        self.ec.copy_snapshot(SourceSnapshotName="phase-snap", TargetSnapshotName="phase",
                              TargetBucket="ec-export-phase")
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket="ec-export-phase"))
        status = lambda: self.ec.describe_snapshots(SnapshotName="phase-snap")["Snapshots"][0]["SnapshotStatus"]  # noqa: E731
        self.assertEqual(status(), "copying")
        self.assertError("InvalidSnapshotState", self.ec.copy_snapshot, SourceSnapshotName="phase-snap",
                         TargetSnapshotName="phase2", TargetBucket="ec-export-phase")
        self.assertEqual(status(), "available")
        self.assertEqual([o["Key"] for o in self.s3.list_objects_v2(Bucket="ec-export-phase")["Contents"]],
                         ["phase-0001.rdb"])

    def test_export_refusals(self) -> None:
        self.snapshot("legacy-redis", "refused-snap")

        def refused(bucket: str, needle: str) -> None:
            error = self.assertError("InvalidParameterValue", self.ec.copy_snapshot, SourceSnapshotName="refused-snap",
                                     TargetSnapshotName="refused", TargetBucket=bucket)
            self.assertIn(needle, error.response["Error"]["Message"])

        refused("ec-no-such-bucket", "does not exist")
        client("source", "s3", "eu-west-1").create_bucket(
            Bucket="ec-export-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        refused("ec-export-eu", "outside of the region")
        self.ds3.create_bucket(Bucket="ec-export-theirs")
        refused("ec-export-theirs", "not owned by the authenticated user")
        self.s3.create_bucket(Bucket="ec-export-nopolicy")
        refused("ec-export-nopolicy", "not been granted READ permissions")
        self.export_bucket("ec-export-readonly", ["s3:GetObject", "s3:ListBucket", "s3:GetBucketAcl"])
        refused("ec-export-readonly", "not been granted WRITE permissions")
        self.export_bucket("ec-export-noacl", ["s3:GetObject", "s3:ListBucket", "s3:PutObject"])
        refused("ec-export-noacl", "not been granted READ_ACP permissions")
        self.export_bucket("ec-export-taken")
        self.s3.put_object(Bucket="ec-export-taken", Key="refused-0001.rdb", Body=b"x")
        refused("ec-export-taken", "already contains an object with key refused-0001.rdb")
        control("/snapcourier/config", {"deny": [{"account": SOURCE, "action": "s3:PutObject",
                                                  "resource": "^ec-export-denied/"}]})
        self.export_bucket("ec-export-denied")
        refused("ec-export-denied", "does not have sufficient permissions")

    def test_serverless_export(self) -> None:
        self.export_bucket("ec-export-sl")
        self.ec.create_serverless_cache_snapshot(ServerlessCacheName="profiles-serverless",
                                                 ServerlessCacheSnapshotName="sl-exp")
        answer = self.ec.export_serverless_cache_snapshot(ServerlessCacheSnapshotName="sl-exp",
                                                          S3BucketName="ec-export-sl")
        self.assertEqual(answer["ServerlessCacheSnapshot"]["Status"], "exporting")
        body = self.body("ec-export-sl", "sl-exp-0001.rdb")
        self.assertEqual(str(len(body)), answer["ServerlessCacheSnapshot"]["BytesUsedForCache"])
        self.assertError("InvalidParameterValue", self.ec.export_serverless_cache_snapshot,
                         ServerlessCacheSnapshotName="sl-exp", S3BucketName="ec-no-such-bucket")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.export_serverless_cache_snapshot,
                         ServerlessCacheSnapshotName="nope", S3BucketName="ec-export-sl")


class S3CrossAccountTest(ElastiCacheTest):
    def exported(self, bucket: str, *extra: dict[str, Any], kms_key: str | None = None) -> str:
        """A bucket with the export of sessions-valkey as `<bucket>-snap-0001.rdb`."""
        self.export_bucket(bucket, None, kms_key, *extra)
        self.snapshot("sessions-valkey", f"{bucket}-snap")
        self.ec.copy_snapshot(SourceSnapshotName=f"{bucket}-snap", TargetSnapshotName=f"{bucket}-snap",
                              TargetBucket=bucket)
        return f"{bucket}-snap-0001.rdb"

    def test_reads_across_accounts_need_the_bucket_policy(self) -> None:
        key = self.exported("xacct-a")
        self.assertError("AccessDenied", self.ds3.get_object, Bucket="xacct-a", Key=key)
        self.assertError("AccessDenied", self.ds3.list_objects_v2, Bucket="xacct-a")
        grant = allow({"AWS": f"arn:aws:iam::{DEST}:root"}, ["s3:GetObject"], "arn:aws:s3:::xacct-a/xacct-a-*")
        listing = allow({"AWS": DEST}, ["s3:ListBucket"], "arn:aws:s3:::xacct-a")
        service = allow({"Service": SERVICE}, EXPORT_GRANTS, "arn:aws:s3:::xacct-a", "arn:aws:s3:::xacct-a/*")
        self.s3.put_bucket_policy(Bucket="xacct-a", Policy=policy(service, grant, listing))
        self.assertEqual(self.body("xacct-a", key, self.ds3), self.body("xacct-a", key))
        self.assertEqual(self.ds3.list_objects_v2(Bucket="xacct-a")["KeyCount"], 1)
        self.s3.put_object(Bucket="xacct-a", Key="other/file", Body=b"x")
        self.assertError("AccessDenied", self.ds3.get_object, Bucket="xacct-a", Key="other/file")
        self.assertError("AccessDenied", self.ds3.put_object, Bucket="xacct-a", Key="xacct-a-new", Body=b"x")
        deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::xacct-a/{key}"}
        self.s3.put_bucket_policy(Bucket="xacct-a", Policy=policy(service, grant, listing, deny))
        self.assertError("AccessDenied", self.ds3.get_object, Bucket="xacct-a", Key=key)
        self.assertError("AccessDenied", self.s3.get_object, Bucket="xacct-a", Key=key)  # the owner too

    def test_kms_key_policy_for_cross_account_reads(self) -> None:
        key = self.exported("xacct-kms", kms_key=cmk(SOURCE))
        grant = allow({"AWS": DEST}, ["s3:GetObject"], "arn:aws:s3:::xacct-kms/*")
        service = allow({"Service": SERVICE}, EXPORT_GRANTS, "arn:aws:s3:::xacct-kms", "arn:aws:s3:::xacct-kms/*")
        self.s3.put_bucket_policy(Bucket="xacct-kms", Policy=policy(service, grant))
        self.ds3.head_object(Bucket="xacct-kms", Key=key)  # no decryption
        self.assertError("AccessDenied", self.ds3.get_object, Bucket="xacct-kms", Key=key)
        kms = client("source", "kms")
        original = kms.get_key_policy(KeyId=cmk(SOURCE), PolicyName="default")["Policy"]
        try:
            document = json.loads(original)
            document["Statement"].append(allow({"AWS": f"arn:aws:iam::{DEST}:root"}, ["kms:Decrypt"], "*"))
            kms.put_key_policy(KeyId=cmk(SOURCE), PolicyName="default", Policy=json.dumps(document))
            self.assertTrue(self.body("xacct-kms", key, self.ds3).startswith(b"REDIS"))
        finally:
            kms.put_key_policy(KeyId=cmk(SOURCE), PolicyName="default", Policy=original)
        self.s3.put_object(Bucket="xacct-kms", Key="managed", Body=b"x", ServerSideEncryption="aws:kms")
        head = self.s3.head_object(Bucket="xacct-kms", Key="managed")
        self.assertIn(":key/", head["SSEKMSKeyId"])  # the aws/s3 key, as an ARN
        self.assertError("AccessDenied", self.ds3.get_object, Bucket="xacct-kms", Key="managed")

    def test_copy_across_accounts_and_regions_into_an_object_lock_vault(self) -> None:
        key = self.exported("xacct-src", kms_key=cmk(SOURCE))
        vault = client("destination", "s3", "eu-west-1")
        vault.create_bucket(Bucket="vault-eu-1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
                            ObjectLockEnabledForBucket=True)
        until = datetime.now(timezone.utc) + timedelta(days=2)
        copy = lambda target, **extra: vault.copy_object(  # noqa: E731
            Bucket="vault-eu-1", Key=target, CopySource={"Bucket": "xacct-src", "Key": key},
            ServerSideEncryption="aws:kms", SSEKMSKeyId=cmk(DEST, "eu-west-1"), **extra)
        self.assertError("AccessDenied", copy, "v/denied.rdb")  # no bucket policy grant yet
        service = allow({"Service": SERVICE}, EXPORT_GRANTS, "arn:aws:s3:::xacct-src", "arn:aws:s3:::xacct-src/*")
        grant = allow({"AWS": DEST}, ["s3:GetObject"], "arn:aws:s3:::xacct-src/*")
        self.s3.put_bucket_policy(Bucket="xacct-src", Policy=policy(service, grant))
        kms = client("source", "kms")
        original = kms.get_key_policy(KeyId=cmk(SOURCE), PolicyName="default")["Policy"]
        document = json.loads(original)
        document["Statement"].append(allow({"AWS": DEST}, ["kms:Decrypt"], "*"))
        kms.put_key_policy(KeyId=cmk(SOURCE), PolicyName="default", Policy=json.dumps(document))
        try:
            result = copy("v/gov.rdb", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
            copy("v/comp.rdb", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
        finally:
            kms.put_key_policy(KeyId=cmk(SOURCE), PolicyName="default", Policy=original)
        source = self.s3.head_object(Bucket="xacct-src", Key=key, ChecksumMode="ENABLED")
        head = vault.head_object(Bucket="vault-eu-1", Key="v/gov.rdb", ChecksumMode="ENABLED")
        self.assertEqual(result["CopyObjectResult"]["ChecksumSHA256"], source["ChecksumSHA256"])
        self.assertEqual((head["ChecksumSHA256"], head["ETag"], head["ContentLength"]),
                         (source["ChecksumSHA256"], source["ETag"], source["ContentLength"]))
        self.assertEqual((head["SSEKMSKeyId"], head["ObjectLockMode"]), (cmk(DEST, "eu-west-1"), "GOVERNANCE"))
        retention = vault.get_object_retention(Bucket="vault-eu-1", Key="v/gov.rdb")["Retention"]
        self.assertEqual(retention["Mode"], "GOVERNANCE")
        self.assertAlmostEqual(retention["RetainUntilDate"].timestamp(), until.timestamp(), delta=1)
        gov, comp = head["VersionId"], vault.head_object(Bucket="vault-eu-1", Key="v/comp.rdb")["VersionId"]
        self.assertError("AccessDenied", vault.delete_object, Bucket="vault-eu-1", Key="v/gov.rdb", VersionId=gov)
        self.assertError("AccessDenied", vault.delete_object, Bucket="vault-eu-1", Key="v/gov.rdb", VersionId=gov,
                         BypassGovernanceRetention=False)
        control("/snapcourier/config", {"deny": [{"account": DEST, "action": "s3:BypassGovernanceRetention",
                                                  "resource": "^vault-eu-1/"}]})
        self.assertError("AccessDenied", vault.delete_object, Bucket="vault-eu-1", Key="v/gov.rdb", VersionId=gov,
                         BypassGovernanceRetention=True)
        control("/snapcourier/config", {"deny": []})
        self.assertError("AccessDenied", vault.delete_object, Bucket="vault-eu-1", Key="v/comp.rdb", VersionId=comp,
                         BypassGovernanceRetention=True)
        vault.delete_object(Bucket="vault-eu-1", Key="v/gov.rdb", VersionId=gov, BypassGovernanceRetention=True)
        marker = vault.delete_object(Bucket="vault-eu-1", Key="v/comp.rdb")  # a delete marker, the version stays
        self.assertTrue(marker["DeleteMarker"])
        vault.head_object(Bucket="vault-eu-1", Key="v/comp.rdb", VersionId=comp)
        # The bucket's default retention applies to copies without lock headers (the bucket holds objects).
        vault.put_object_lock_configuration(Bucket="vault-eu-1", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
        vault.copy_object(Bucket="vault-eu-1", Key="v/default.rdb", CopySource={"Bucket": "vault-eu-1",
                                                                               "Key": "v/comp.rdb",
                                                                               "VersionId": comp})
        self.assertEqual(vault.head_object(Bucket="vault-eu-1", Key="v/default.rdb")["ObjectLockMode"], "COMPLIANCE")
        unlocked = client("destination", "s3", "eu-west-1")
        unlocked.create_bucket(Bucket="plain-eu-1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.assertError("InvalidRequest", unlocked.copy_object, Bucket="plain-eu-1", Key="x",
                         CopySource={"Bucket": "vault-eu-1", "Key": "v/default.rdb"},
                         ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)

    def test_list_objects_v2_pages(self) -> None:
        self.s3.create_bucket(Bucket="list-pages")
        for n in range(5):
            self.s3.put_object(Bucket="list-pages", Key=f"p/{n}", Body=b"x")
        keys, token = [], None
        while True:
            page = self.s3.list_objects_v2(Bucket="list-pages", Prefix="p/", MaxKeys=2,
                                           **({"ContinuationToken": token} if token else {}))
            keys += [o["Key"] for o in page["Contents"]]
            token = page.get("NextContinuationToken")
            if not page["IsTruncated"]:
                break
        self.assertEqual(keys, [f"p/{n}" for n in range(5)])


class ElastiCacheSeedTest(ElastiCacheTest):
    def test_seed_from_exported_objects_round_trips(self) -> None:
        self.export_bucket("seed-src")
        self.snapshot("carts-valkey", "seed-snap")
        self.ec.copy_snapshot(SourceSnapshotName="seed-snap", TargetSnapshotName="seed", TargetBucket="seed-src")
        arns = [f"arn:aws:s3:::seed-src/seed-000{i}.rdb" for i in (1, 2, 3)]
        control("/snapcourier/config", {"restore_reads": 1})
        answer = self.ec.create_replication_group(
            ReplicationGroupId="seeded-carts", ReplicationGroupDescription="seeded", Engine="valkey",
            CacheNodeType="cache.t4g.micro", ClusterMode="enabled", NumNodeGroups=3, ReplicasPerNodeGroup=1,
            SnapshotArns=arns)["ReplicationGroup"]
        self.assertEqual(answer["Status"], "creating")
        status = lambda: self.ec.describe_replication_groups(  # noqa: E731
            ReplicationGroupId="seeded-carts")["ReplicationGroups"][0]["Status"]
        self.assertEqual(status(), "creating")
        self.assertError("InvalidReplicationGroupState", self.snapshot, "seeded-carts", "too-early")
        self.assertEqual(status(), "available")
        self.snapshot("seeded-carts", "seeded-snap")
        self.ec.copy_snapshot(SourceSnapshotName="seeded-snap", TargetSnapshotName="again", TargetBucket="seed-src")
        for i in (1, 2, 3):
            self.assertEqual(self.body("seed-src", f"again-000{i}.rdb"), self.body("seed-src", f"seed-000{i}.rdb"))

    def test_seed_refusals_and_a_bad_object(self) -> None:
        dec = client("destination", "elasticache")

        def create(ec: Any, ident: str, arn: str) -> Any:
            return ec.create_replication_group(ReplicationGroupId=ident, ReplicationGroupDescription="d",
                                               Engine="valkey", CacheNodeType="cache.t4g.micro", SnapshotArns=[arn])

        self.s3.create_bucket(Bucket="seed-nopolicy")
        self.s3.put_object(Bucket="seed-nopolicy", Key="a.rdb", Body=b"REDIS0011\xff")
        for arn, needle in [("arn:aws:s3:::seed-nopolicy/missing.rdb", "No object"),
                            ("arn:aws:s3:::seed-nopolicy/a.rdb", "READ permissions"),
                            ("not-an-arn", "Invalid S3 ARN")]:
            error = self.assertError("InvalidParameterValue", create, self.ec, "seed-refused", arn)
            self.assertIn(needle, error.response["Error"]["Message"])
        self.export_bucket("seed-granted", ["s3:GetObject"])
        self.s3.put_object(Bucket="seed-granted", Key="a.rdb", Body=b"REDIS0011\xff")
        self.s3.put_object(Bucket="seed-granted", Key="junk.rdb", Body=b"not an rdb file")
        error = self.assertError("InvalidParameterValue", create, dec, "seed-other", "arn:aws:s3:::seed-granted/a.rdb")
        self.assertIn("does not have access", error.response["Error"]["Message"])
        self.assertError("InvalidParameterValue", create, client("source", "elasticache", "eu-west-1"),
                         "seed-eu", "arn:aws:s3:::seed-granted/a.rdb")
        self.assertEqual(create(self.ec, "seed-ok", "arn:aws:s3:::seed-granted/a.rdb")["ReplicationGroup"]["Status"],
                         "creating")
        create(self.ec, "seed-junk", "arn:aws:s3:::seed-granted/junk.rdb")
        self.assertEqual(self.ec.describe_replication_groups(ReplicationGroupId="seed-junk")["ReplicationGroups"][0]
                         ["Status"], "create-failed")
        self.assertError("ReplicationGroupAlreadyExists", create, self.ec, "seed-ok", "arn:aws:s3:::seed-granted/a.rdb")


class ElastiCacheVaultSeedTest(ElastiCacheTest):
    def test_elasticache_of_the_vault_account_seeds_from_the_namespace_objects_only(self) -> None:
        region = "eu-west-1"
        vault = f"sc-demo-vault-{DEST}-{region}"
        ds3, dec = client("destination", "s3", region), client("destination", "elasticache", region)

        def create(ec: Any, ident: str, key: str) -> Any:
            return ec.create_replication_group(ReplicationGroupId=ident, ReplicationGroupDescription="d",
                                               Engine="valkey", CacheNodeType="cache.t4g.micro",
                                               SnapshotArns=[f"arn:aws:s3:::{vault}/{key}"])

        ours, other = "sc-demo-cachedaily-carts-0001.rdb", "elsewhere/carts-0001.rdb"
        for key in (ours, other):
            ds3.put_object(Bucket=vault, Key=key, Body=b"REDIS0011\xff")
        self.assertEqual(ds3.head_object(Bucket=vault, Key=ours)["SSEKMSKeyId"], cmk(DEST, region))
        self.assertEqual(create(dec, "sc-demo-dr-seeded", ours)["ReplicationGroup"]["Status"], "creating")
        error = self.assertError("InvalidParameterValue", create, dec, "sc-demo-dr-other", other)
        self.assertIn("READ permissions", error.response["Error"]["Message"])
        # The grant names the vault's account: another account's ElastiCache may not read.
        error = self.assertError("InvalidParameterValue", create, client("source", "elasticache", region),
                                 "sc-demo-dr-foreign", ours)
        self.assertIn("READ permissions", error.response["Error"]["Message"])
        # An object under a key whose policy does not let ElastiCache decrypt.
        plain = client("destination", "kms", region).create_key()["KeyMetadata"]["Arn"]
        locked_out = "sc-demo-cachedaily-carts-0002.rdb"
        ds3.put_object(Bucket=vault, Key=locked_out, Body=b"REDIS0011\xff", ServerSideEncryption="aws:kms",
                       SSEKMSKeyId=plain)
        error = self.assertError("InvalidParameterValue", create, dec, "sc-demo-dr-nokey", locked_out)
        self.assertIn("cannot decrypt", error.response["Error"]["Message"])


class VaultCopyInPartsTest(ElastiCacheTest):
    def test_a_copy_in_parts_across_accounts_keeps_lock_key_and_the_full_object_crc64nvme(self) -> None:
        region, mib = "eu-west-1", 1024 * 1024
        export = f"sc-demo-export-{SOURCE}-us-east-1"
        vault = f"sc-demo-vault-{DEST}-{region}"
        key = "sc-demo-cachedaily-big-0001.rdb"
        body = bytes(range(256)) * (11 * mib // 256)
        self.s3.put_object(Bucket=export, Key=key, Body=body, ChecksumAlgorithm="CRC64NVME")
        source = self.s3.head_object(Bucket=export, Key=key, ChecksumMode="ENABLED")
        self.assertEqual(len(source["ChecksumCRC64NVME"]), 12)  # 8 bytes, base64: awscrt's CRC64NVME
        ds3 = client("destination", "s3", region)
        until = datetime.now(timezone.utc) + timedelta(days=2)
        upload = ds3.create_multipart_upload(
            Bucket=vault, Key=key, ServerSideEncryption="aws:kms", SSEKMSKeyId=cmk(DEST, region),
            ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until, ChecksumAlgorithm="CRC64NVME",
            ChecksumType="FULL_OBJECT")["UploadId"]
        copy = lambda number, first, last, **extra: ds3.upload_part_copy(  # noqa: E731
            Bucket=vault, Key=key, UploadId=upload, PartNumber=number, CopySource={"Bucket": export, "Key": key},
            CopySourceRange=f"bytes={first}-{last}", **extra)
        self.assertError("InvalidRange", copy, 9, 10 * mib, 12 * mib)
        parts = []
        for number, first in enumerate(range(0, len(body), 5 * mib), 1):
            last = min(first + 5 * mib, len(body)) - 1
            result = copy(number, first, last)["CopyPartResult"]
            self.assertIn("ChecksumCRC64NVME", result)
            parts.append({"PartNumber": number, "ETag": result["ETag"],
                          "ChecksumCRC64NVME": result["ChecksumCRC64NVME"]})
        listed = ds3.list_parts(Bucket=vault, Key=key, UploadId=upload, MaxParts=2)
        self.assertTrue(listed["IsTruncated"])
        rest = ds3.list_parts(Bucket=vault, Key=key, UploadId=upload,
                              PartNumberMarker=listed["NextPartNumberMarker"])
        self.assertEqual([(p["PartNumber"], p["ChecksumCRC64NVME"]) for p in listed["Parts"] + rest["Parts"]],
                         [(p["PartNumber"], p["ChecksumCRC64NVME"]) for p in parts])
        uploads = ds3.list_multipart_uploads(Bucket=vault, Prefix=key)["Uploads"]
        self.assertEqual([u["UploadId"] for u in uploads], [upload])
        complete = lambda checksum: ds3.complete_multipart_upload(  # noqa: E731
            Bucket=vault, Key=key, UploadId=upload, MultipartUpload={"Parts": parts},
            ChecksumCRC64NVME=checksum, ChecksumType="FULL_OBJECT")
        self.assertError("BadDigest", complete, "AAAAAAAAAAA=")
        complete(source["ChecksumCRC64NVME"])
        head = ds3.head_object(Bucket=vault, Key=key, ChecksumMode="ENABLED")
        self.assertEqual((head["ContentLength"], head["ChecksumCRC64NVME"]),
                         (len(body), source["ChecksumCRC64NVME"]))
        self.assertEqual((head["SSEKMSKeyId"], head["ObjectLockMode"]), (cmk(DEST, region), "GOVERNANCE"))
        self.assertAlmostEqual(head["ObjectLockRetainUntilDate"].timestamp(), until.timestamp(), delta=1)
        self.assertError("AccessDenied", ds3.delete_object, Bucket=vault, Key=key, VersionId=head["VersionId"])
        # The source must be readable by the caller, as for CopyObject.
        self.s3.put_object(Bucket=export, Key="elsewhere.rdb", Body=b"x" * 10)
        other = ds3.create_multipart_upload(Bucket=vault, Key="sc-demo-x", ChecksumAlgorithm="CRC64NVME")["UploadId"]
        self.assertError("AccessDenied", ds3.upload_part_copy, Bucket=vault, Key="sc-demo-x", UploadId=other,
                         PartNumber=1, CopySource={"Bucket": export, "Key": "elsewhere.rdb"})


def ec_insert(specs: Any) -> Any:
    """POST /snapcourier/snapshots with ElastiCache snapshot entries (kind added)."""
    def one(spec: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "elasticache", "account": SOURCE, "region": "us-east-1", **spec}

    return control("/snapcourier/snapshots", [one(s) for s in specs] if isinstance(specs, list) else one(specs))


class ElastiCacheInsertTest(ElastiCacheTest):
    def node_times(self, name: str) -> list[datetime]:
        snapshot = self.ec.describe_snapshots(SnapshotName=name)["Snapshots"][0]
        return [n["SnapshotCreateTime"] for n in snapshot["NodeSnapshots"]]

    def test_inserted_snapshots_are_listed_tagged_exported_and_deleted(self) -> None:
        created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        arn = ec_insert({"id": "Old-Carts", "resource_id": "gone-rg", "created": "2025-01-02T03:04:05Z",
                         "shards": 3, "kms_key_id": cmk(SOURCE),
                         "tags": [{"Key": "snapcourier:plan", "Value": "daily"}]})["arn"]
        self.assertEqual(arn, f"arn:aws:elasticache:us-east-1:{SOURCE}:snapshot:old-carts")
        got = self.ec.describe_snapshots(SnapshotName="old-carts")["Snapshots"][0]
        self.assertEqual((got["SnapshotStatus"], got["SnapshotSource"], got["ReplicationGroupId"],
                          got["NumNodeGroups"], got["KmsKeyId"], got["ARN"]),
                         ("available", "manual", "gone-rg", 3, cmk(SOURCE), arn))
        self.assertEqual([n["NodeGroupId"] for n in got["NodeSnapshots"]], ["0001", "0002", "0003"])
        self.assertEqual(self.node_times("old-carts"), [created] * 3)
        self.assertIn("old-carts", [s["SnapshotName"] for s in self.ec.describe_snapshots(
            ReplicationGroupId="gone-rg", SnapshotSource="user")["Snapshots"]])
        self.assertError("ReplicationGroupNotFoundFault", self.ec.describe_replication_groups,
                         ReplicationGroupId="gone-rg")  # the group is not made
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=arn)["TagList"],
                         [{"Key": "snapcourier:plan", "Value": "daily"}])
        self.ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "k", "Value": "v"}])
        self.ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["snapcourier:plan"])
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=arn)["TagList"], [{"Key": "k", "Value": "v"}])
        # Exported like a snapshot CreateSnapshot took: one object per shard.
        self.export_bucket("ec-insert-exp")
        self.ec.copy_snapshot(SourceSnapshotName="old-carts", TargetSnapshotName="old-carts",
                              TargetBucket="ec-insert-exp")
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="ec-insert-exp")["Contents"]]
        self.assertEqual(keys, [f"old-carts-000{i}.rdb" for i in (1, 2, 3)])
        self.assertTrue(self.body("ec-insert-exp", "old-carts-0002.rdb").startswith(b"REDIS0011"))
        self.ec.delete_snapshot(SnapshotName="old-carts")
        self.assertError("SnapshotNotFoundFault", self.ec.describe_snapshots, SnapshotName="old-carts")
        self.assertError("SnapshotNotFoundFault", self.ec.list_tags_for_resource, ResourceName=arn)
        # Of an existing group: its shards, nodes (the replicas) and data, as CreateSnapshot records them.
        ec_insert({"id": "old-carts-2", "resource_id": "carts-valkey", "created": "2025-01-02T03:04:05Z"})
        nodes = self.ec.describe_snapshots(SnapshotName="old-carts-2")["Snapshots"][0]["NodeSnapshots"]
        self.assertEqual([n["CacheClusterId"] for n in nodes], [f"carts-valkey-000{i}-002" for i in (1, 2, 3)])
        self.snapshot("carts-valkey", "new-carts-2")
        for name in ("old-carts-2", "new-carts-2"):
            self.ec.copy_snapshot(SourceSnapshotName=name, TargetSnapshotName=name, TargetBucket="ec-insert-exp")
        self.assertEqual(self.body("ec-insert-exp", "old-carts-2-0003.rdb"),
                         self.body("ec-insert-exp", "new-carts-2-0003.rdb"))

    def test_inserted_serverless_snapshots(self) -> None:
        arn = ec_insert({"id": "Old-SL", "resource_id": "gone-sl", "serverless": True,
                         "created": "2025-02-03T04:05:06+01:00", "tags": [{"Key": "a", "Value": "b"}],
                         "kms_key_id": "alias/snapcourier"})["arn"]
        self.assertEqual(arn, f"arn:aws:elasticache:us-east-1:{SOURCE}:serverlesscachesnapshot:old-sl")
        got = self.ec.describe_serverless_cache_snapshots(ServerlessCacheSnapshotName="old-sl")[
            "ServerlessCacheSnapshots"][0]
        self.assertEqual((got["Status"], got["SnapshotType"], got["ServerlessCacheConfiguration"]["ServerlessCacheName"],
                          got["CreateTime"]),
                         ("available", "manual", "gone-sl", datetime(2025, 2, 3, 3, 5, 6, tzinfo=timezone.utc)))
        self.assertEqual(got["KmsKeyId"], cmk(SOURCE))  # an alias is reported as the key's ARN
        self.assertEqual(self.ec.list_tags_for_resource(ResourceName=arn)["TagList"], [{"Key": "a", "Value": "b"}])
        self.export_bucket("ec-insert-sl")
        answer = self.ec.export_serverless_cache_snapshot(ServerlessCacheSnapshotName="old-sl",
                                                          S3BucketName="ec-insert-sl")["ServerlessCacheSnapshot"]
        body = self.body("ec-insert-sl", "old-sl-0001.rdb")
        self.assertEqual(str(len(body)), answer["BytesUsedForCache"])
        self.ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="old-sl")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.describe_serverless_cache_snapshots,
                         ServerlessCacheSnapshotName="old-sl")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.list_tags_for_resource, ResourceName=arn)
        # Of the existing serverless cache: its engine and data.
        ec_insert({"id": "old-profiles", "resource_id": "profiles-serverless", "serverless": True})
        self.ec.create_serverless_cache_snapshot(ServerlessCacheName="profiles-serverless",
                                                 ServerlessCacheSnapshotName="new-profiles")
        for name in ("old-profiles", "new-profiles"):
            self.ec.export_serverless_cache_snapshot(ServerlessCacheSnapshotName=name, S3BucketName="ec-insert-sl")
        self.assertEqual(self.body("ec-insert-sl", "old-profiles-0001.rdb"),
                         self.body("ec-insert-sl", "new-profiles-0001.rdb"))

    def test_inserted_statuses(self) -> None:
        ec_insert([{"id": "ins-creating-1", "resource_id": "gone-rg", "status": "creating", "creating_reads": 1},
                   {"id": "ins-creating", "resource_id": "gone-rg", "status": "creating"},
                   {"id": "ins-failed", "resource_id": "gone-rg", "status": "failed"},
                   {"id": "ins-sl-creating", "resource_id": "gone-sl", "serverless": True, "status": "creating",
                    "creating_reads": 1}])
        status = lambda name: self.ec.describe_snapshots(SnapshotName=name)["Snapshots"][0]["SnapshotStatus"]  # noqa: E731
        self.assertEqual(status("ins-creating-1"), "creating")
        self.assertError("InvalidSnapshotState", self.ec.delete_snapshot, SnapshotName="ins-creating-1")
        self.assertError("InvalidSnapshotState", self.ec.copy_snapshot, SourceSnapshotName="ins-creating-1",
                         TargetSnapshotName="x", TargetBucket="ec-insert-nowhere")
        self.assertEqual(status("ins-creating-1"), "available")
        for _ in range(3):  # no creating_reads: creating until further notice
            self.assertEqual(status("ins-creating"), "creating")
        self.assertEqual(status("ins-failed"), "failed")
        self.ec.delete_snapshot(SnapshotName="ins-failed")  # a failed snapshot can be deleted
        sl = lambda: self.ec.describe_serverless_cache_snapshots(  # noqa: E731
            ServerlessCacheSnapshotName="ins-sl-creating")["ServerlessCacheSnapshots"][0]["Status"]
        self.assertEqual(sl(), "creating")
        self.assertError("InvalidServerlessCacheSnapshotStateFault", self.ec.delete_serverless_cache_snapshot,
                         ServerlessCacheSnapshotName="ins-sl-creating")
        self.assertEqual(sl(), "available")
        # A stuck pattern holds an inserted snapshot too.
        control("/snapcourier/config", {"stuck": ["^ins-stuck"]})
        ec_insert({"id": "ins-stuck", "resource_id": "gone-rg", "status": "creating", "creating_reads": 0})
        self.assertEqual(status("ins-stuck"), "creating")
        control("/snapcourier/config", {"stuck": []})
        self.assertEqual(status("ins-stuck"), "available")

    def test_inserted_snapshots_page(self) -> None:
        start = datetime(2025, 1, 1, tzinfo=timezone.utc)
        names = [f"paged-{n:03d}" for n in range(120)]
        ec_insert([{"id": name, "resource_id": "paged-rg",
                    "created": (start + timedelta(hours=n)).isoformat()} for n, name in enumerate(names)])
        seen, marker, sizes = [], None, []
        while True:
            page = self.ec.describe_snapshots(ReplicationGroupId="paged-rg", MaxRecords=50,
                                              **({"Marker": marker} if marker else {}))
            sizes.append(len(page["Snapshots"]))
            seen += [(s["SnapshotName"], s["NodeSnapshots"][0]["SnapshotCreateTime"]) for s in page["Snapshots"]]
            marker = page.get("Marker")
            if not marker:
                break
        self.assertEqual(sizes, [50, 50, 20])
        self.assertEqual(seen, [(name, start + timedelta(hours=n)) for n, name in enumerate(names)])
        ec_insert([{"id": f"sl-{name}", "resource_id": "paged-sl", "serverless": True} for name in names])
        seen, token, sizes = [], None, []
        while True:
            page = self.ec.describe_serverless_cache_snapshots(ServerlessCacheName="paged-sl", MaxResults=50,
                                                               **({"NextToken": token} if token else {}))
            sizes.append(len(page["ServerlessCacheSnapshots"]))
            seen += [s["ServerlessCacheSnapshotName"] for s in page["ServerlessCacheSnapshots"]]
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual((sizes, seen), ([50, 50, 20], [f"sl-{name}" for name in names]))

    def test_insert_validation_and_bulk_rollback(self) -> None:
        for bad, field in [({"id": "v", "resource_id": "r", "status": "sleepy"}, "status"),
                           ({"id": "v", "resource_id": "r", "shards": 0}, "shards"),
                           ({"id": "v", "resource_id": "r", "shards": 501}, "shards"),
                           ({"id": "v", "resource_id": "r", "created": "yesterday"}, "created"),
                           ({"id": "v", "resource_id": "r", "created": "2025-01-01T00:00:00"}, "created"),
                           ({"id": "v", "resource_id": "r", "serverless": True, "shards": 2}, "shards"),
                           ({"id": "v", "resource_id": "r", "kms_key_id": "alias/nope"}, "kms_key_id"),
                           ({"id": "v", "resource_id": "r", "serverless": "yes"}, "serverless"),
                           ({"id": "v", "resource_id": "r", "tags": {"a": "b"}}, "tags"),
                           ({"id": "v", "resource_id": "r", "creating_reads": 2}, "creating_reads"),
                           ({"id": "v"}, "resource_id"),
                           ({"resource_id": "r"}, "id"),
                           ({"id": "v", "resource_id": "r", "shard": 2}, "shard"),
                           ({"id": "v", "resource_id": "r", "account": "me"}, "account")]:
            code, message = control_error("/snapcourier/snapshots", {"kind": "elasticache", "account": SOURCE,
                                                                      "region": "us-east-1", **bad})
            self.assertEqual(code, 400, bad)
            self.assertIn(field, message, bad)
        ec_insert({"id": "taken-ec", "resource_id": "r"})
        self.assertIn("already exists", control_error("/snapcourier/snapshots", {
            "kind": "elasticache", "account": SOURCE, "region": "us-east-1", "id": "Taken-EC", "resource_id": "r"})[1])
        specs = [{"kind": "elasticache", "account": SOURCE, "region": "us-east-1", "id": "bulk-ec",
                  "resource_id": "r", "tags": [{"Key": "a", "Value": "b"}]},
                 {"kind": "elasticache", "account": SOURCE, "region": "us-east-1", "id": "bulk-ec-sl",
                  "resource_id": "r", "serverless": True},
                 {"account": SOURCE, "region": "us-east-1", "id": "bulk-ec-rds"},
                 {"kind": "elasticache", "account": SOURCE, "region": "us-east-1", "id": "bulk-ec-bad",
                  "resource_id": "r", "status": "sleepy"}]
        code, message = control_error("/snapcourier/snapshots", specs)
        self.assertEqual((code, "status" in message), (400, True))
        self.assertError("SnapshotNotFoundFault", self.ec.describe_snapshots, SnapshotName="bulk-ec")
        self.assertError("SnapshotNotFoundFault", self.ec.list_tags_for_resource,
                         ResourceName=f"arn:aws:elasticache:us-east-1:{SOURCE}:snapshot:bulk-ec")
        self.assertError("ServerlessCacheSnapshotNotFoundFault", self.ec.describe_serverless_cache_snapshots,
                         ServerlessCacheSnapshotName="bulk-ec-sl")
        self.assertError("DBClusterSnapshotNotFoundFault", cluster_snapshot, self.src, "bulk-ec-rds")
        arns = control("/snapcourier/snapshots", specs[:3])["arns"]
        self.assertEqual(len(arns), 3)


def obj_insert(specs: Any) -> Any:
    return control("/snapcourier/objects", specs)


class S3InsertObjectTest(ElastiCacheTest):
    def vault(self, name: str) -> None:
        self.s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)

    def test_inserted_objects_carry_their_time_body_checksum_and_key(self) -> None:
        self.s3.create_bucket(Bucket="ins-plain")
        answer = obj_insert({"bucket": "ins-plain", "key": "a.rdb", "last_modified": "2025-03-04T05:06:07Z"})
        self.assertEqual(answer, {"version_id": None})
        head = self.s3.head_object(Bucket="ins-plain", Key="a.rdb", ChecksumMode="ENABLED")
        body = self.body("ins-plain", "a.rdb")
        self.assertTrue(body.startswith(b"REDIS0011"))
        self.assertEqual((head["LastModified"], head["ContentLength"], head["ChecksumSHA256"]),
                         (datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc), len(body), sha256_b64(body)))
        listed = self.s3.list_objects_v2(Bucket="ins-plain")["Contents"][0]
        self.assertEqual(listed["LastModified"], datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
        obj_insert([{"bucket": "ins-plain", "key": "sized", "size": 1000},
                    {"bucket": "ins-plain", "key": "text", "body": "hello", "checksum": False},
                    {"bucket": "ins-plain", "key": "kms", "body": "k", "kms_key_id": cmk(SOURCE)}])
        self.assertEqual(self.s3.head_object(Bucket="ins-plain", Key="sized")["ContentLength"], 1000)
        self.assertEqual(self.body("ins-plain", "text"), b"hello")
        self.assertNotIn("ChecksumSHA256", self.s3.head_object(Bucket="ins-plain", Key="text", ChecksumMode="ENABLED"))
        head = self.s3.head_object(Bucket="ins-plain", Key="kms")
        self.assertEqual((head["ServerSideEncryption"], head["SSEKMSKeyId"]), ("aws:kms", cmk(SOURCE)))
        # Without kms_key_id: the bucket's default encryption, as for a PutObject.
        self.export_bucket("ins-encrypted", kms_key=cmk(SOURCE))
        obj_insert({"bucket": "ins-encrypted", "key": "d"})
        self.assertEqual(self.s3.head_object(Bucket="ins-encrypted", Key="d")["SSEKMSKeyId"], cmk(SOURCE))
        # As its owner: another account's bucket is found by name.
        self.ds3.create_bucket(Bucket="ins-theirs")
        obj_insert({"bucket": "ins-theirs", "key": "x", "body": "x"})
        self.assertEqual(self.body("ins-theirs", "x", self.ds3), b"x")

    def test_locks_expired_and_held(self) -> None:
        self.vault("ins-vault")
        past = datetime.now(timezone.utc) - timedelta(days=1)
        future = datetime.now(timezone.utc) + timedelta(days=2)
        iso = lambda t: t.replace(microsecond=0).isoformat()  # noqa: E731
        ids = obj_insert([
            {"bucket": "ins-vault", "key": "expired", "lock_mode": "COMPLIANCE", "lock_until": iso(past),
             "last_modified": iso(past - timedelta(days=30))},
            {"bucket": "ins-vault", "key": "held", "lock_mode": "COMPLIANCE", "lock_until": iso(future)},
            {"bucket": "ins-vault", "key": "gov", "lock_mode": "GOVERNANCE", "lock_until": iso(future)},
        ])["version_ids"]
        self.assertTrue(all(ids))
        head = self.s3.head_object(Bucket="ins-vault", Key="held", VersionId=ids[1])
        self.assertEqual((head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]),
                         ("COMPLIANCE", future.replace(microsecond=0)))
        retention = self.s3.get_object_retention(Bucket="ins-vault", Key="expired", VersionId=ids[0])["Retention"]
        self.assertEqual((retention["Mode"], retention["RetainUntilDate"]), ("COMPLIANCE", past.replace(microsecond=0)))
        self.assertEqual(self.s3.get_object_retention(Bucket="ins-vault", Key="gov")["Retention"]["Mode"], "GOVERNANCE")
        self.s3.delete_object(Bucket="ins-vault", Key="expired", VersionId=ids[0])  # the lock has expired
        self.assertError("AccessDenied", self.s3.delete_object, Bucket="ins-vault", Key="held", VersionId=ids[1])
        self.assertError("AccessDenied", self.s3.delete_object, Bucket="ins-vault", Key="gov", VersionId=ids[2])
        self.s3.delete_object(Bucket="ins-vault", Key="gov", VersionId=ids[2], BypassGovernanceRetention=True)
        # The bucket's default retention counts from last_modified.
        self.s3.put_object_lock_configuration(Bucket="ins-vault", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
        old = obj_insert({"bucket": "ins-vault", "key": "old", "last_modified": iso(past - timedelta(days=2))})
        new = obj_insert({"bucket": "ins-vault", "key": "new"})
        self.assertEqual(self.s3.head_object(Bucket="ins-vault", Key="new")["ObjectLockMode"], "COMPLIANCE")
        self.s3.delete_object(Bucket="ins-vault", Key="old", VersionId=old["version_id"])
        self.assertError("AccessDenied", self.s3.delete_object, Bucket="ins-vault", Key="new",
                         VersionId=new["version_id"])

    def test_versions_take_their_place_in_history(self) -> None:
        self.s3.create_bucket(Bucket="ins-versioned")
        self.s3.put_bucket_versioning(Bucket="ins-versioned", VersioningConfiguration={"Status": "Enabled"})
        first = self.s3.put_object(Bucket="ins-versioned", Key="k", Body=b"api")["VersionId"]
        newest = obj_insert({"bucket": "ins-versioned", "key": "k", "body": "newest"})["version_id"]
        older = obj_insert({"bucket": "ins-versioned", "key": "k", "body": "older",
                            "last_modified": "2020-01-01T00:00:00Z"})["version_id"]
        self.assertEqual(len({first, newest, older}), 3)
        self.assertEqual(self.body("ins-versioned", "k"), b"newest")
        versions = self.s3.list_object_versions(Bucket="ins-versioned", Prefix="k")["Versions"]
        self.assertEqual([(v["VersionId"], v["IsLatest"]) for v in versions],
                         [(newest, True), (first, False), (older, False)])

    def test_object_insert_validation_and_bulk_rollback(self) -> None:
        self.s3.create_bucket(Bucket="ins-checks")
        self.vault("ins-checks-vault")
        future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
        for bad, field in [({"bucket": "ins-nowhere", "key": "k"}, "bucket"),
                           ({"key": "k"}, "bucket"),
                           ({"bucket": "ins-checks"}, "key"),
                           ({"bucket": "ins-checks", "key": "k", "body": "x", "size": 1}, "size"),
                           ({"bucket": "ins-checks", "key": "k", "size": -1}, "size"),
                           ({"bucket": "ins-checks", "key": "k", "body": 5}, "body"),
                           ({"bucket": "ins-checks", "key": "k", "last_modified": "2025-01-01T00:00:00"},
                            "last_modified"),
                           ({"bucket": "ins-checks-vault", "key": "k", "lock_mode": "FOREVER", "lock_until": future},
                            "lock_mode"),
                           ({"bucket": "ins-checks-vault", "key": "k", "lock_mode": "GOVERNANCE"}, "lock_until"),
                           ({"bucket": "ins-checks-vault", "key": "k", "lock_mode": "GOVERNANCE",
                             "lock_until": "soon"}, "lock_until"),
                           ({"bucket": "ins-checks", "key": "k", "lock_mode": "GOVERNANCE", "lock_until": future},
                            "lock_mode"),
                           ({"bucket": "ins-checks", "key": "k", "kms_key_id": "alias/nope"}, "kms_key_id"),
                           ({"bucket": "ins-checks", "key": "k", "checksum": "yes"}, "checksum"),
                           ({"bucket": "ins-checks", "key": "k", "lock_untill": future}, "lock_untill")]:
            code, message = control_error("/snapcourier/objects", bad)
            self.assertEqual(code, 400, bad)
            self.assertIn(field, message, bad)
        code, message = control_error("/snapcourier/objects", [{"bucket": "ins-checks", "key": "ok", "body": "x"},
                                                               {"bucket": "ins-checks", "key": "bad", "size": "big"}])
        self.assertEqual((code, "size" in message), (400, True))
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket="ins-checks"))


@unittest.skipUnless(os.environ.get("SNAPCOURIER_CARGO_LAMBDA") == "1",
                     "set SNAPCOURIER_CARGO_LAMBDA=1 to run the project's lambdas under cargo lambda watch")
class CargoLambdaSmokeTest(EmulatorTest):
    """`cargo lambda watch` serving crates/lambdas, routed through the
    emulator. The first invocation waits for the binary to build."""

    def test_take_rejects_empty_event(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        source = STATE["accounts"]["source"]
        env = {**os.environ,
               "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               # The functions inherit watch's environment: this is the account they work in.
               "AWS_ACCESS_KEY_ID": source["access_key_id"],
               "AWS_SECRET_ACCESS_KEY": source["secret_access_key"],
               "AWS_ENDPOINT_URL": STATE["endpoint"],
               "AWS_REGION": "us-east-1"}
        log = tempfile.TemporaryFile()
        started = time.monotonic()
        # --ignore-changes: edits under crates/ must not restart functions mid-test.
        watch = subprocess.Popen(["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--ignore-changes"],
                                 cwd=REPO / "crates" / "lambdas", env=env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                self.assertIsNone(watch.poll(), "cargo lambda watch exited")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            listening = time.monotonic() - started
            control("/snapcourier/lambda-routes", {"take": f"http://127.0.0.1:{port}"})
            lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=STATE["endpoint"],
                               aws_access_key_id=source["access_key_id"],
                               aws_secret_access_key=source["secret_access_key"],
                               config=Config(read_timeout=1800, retries={"total_max_attempts": 1}))
            cold = time.monotonic()
            answer = lam.invoke(FunctionName="take", Payload=b"{}")
            cold = time.monotonic() - cold
            warm = time.monotonic()
            lam.invoke(FunctionName="take", Payload=b"{}")
            warm = time.monotonic() - warm
            print(f"\ncargo lambda watch: listening after {listening:.1f}s, first invoke {cold:.1f}s, "
                  f"next {warm * 1000:.0f} ms", file=sys.stderr)
            self.assertEqual(answer.get("FunctionError"), "Unhandled")
            error = json.loads(answer["Payload"].read())
            self.assertEqual(error["errorType"], "ConfigInvalid", error)
        finally:
            control("/snapcourier/lambda-routes", {"take": None})
            os.killpg(watch.pid, signal.SIGTERM)
            try:
                watch.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(watch.pid, signal.SIGKILL)
                watch.wait()
            log.seek(0)
            tail = log.read()[-3000:].decode("utf-8", "replace")
            log.close()
            if sys.exc_info()[0] is not None:
                print(tail, file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
