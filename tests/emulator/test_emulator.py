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
DEFAULT_CONFIG = {"creating_reads": 0, "stuck": [], "throttle_rate": 0.0, "throttle_seed": 0,
                  "throttle_services": ["rds"], "deny": []}
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

    def test_config_round_trip_and_validation(self) -> None:
        merged = control("/snapcourier/config", {"creating_reads": 3, "stuck": ["x"]})
        self.assertEqual(merged, {**DEFAULT_CONFIG, "creating_reads": 3, "stuck": ["x"]})
        self.assertEqual(control("/snapcourier/config"), merged)
        for bad in ({"creating_reads": -1}, {"throttle_rate": 2}, {"stuck": ["("]}, {"nope": 1}):
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
