"""Checks of the snapcourier emulator through boto3, as the product sees it.

Run: cd tests/emulator && ../../.venv/bin/python -m unittest -v test_emulator

One emulator (seed "demo") serves the whole module; each test uses its own
snapshot ids, and the runtime config is reset after every test. The
lifeline tests start emulators of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
SOURCE, DEST = "111111111111", "222222222222"
DEFAULT_CONFIG = {"creating_reads": 0, "stuck": [], "throttle_rate": 0.0, "throttle_seed": 0,
                  "throttle_services": ["rds"]}
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


if __name__ == "__main__":
    unittest.main()
