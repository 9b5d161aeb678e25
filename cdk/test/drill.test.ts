// The destination's restore drill (examples/snapcourier.yaml has a drills section): its deployed
// run, the drill step and its least-privilege role (ElastiCache's drill too: caches seeded from
// the vault), its own state machine, schedule and alarms, the vault's guardrails around it; and
// a config without drills gets none of it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Validations } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { loadConfig } from "../lib/config";
import { placeholders, STATEMACHINE_DIR } from "../lib/stacks";
import { serviceControlPolicy } from "../lib/vault";
import {
  CLI,
  EXAMPLE,
  type Call,
  allowed,
  cliInputs,
  glob,
  keylessConfig,
  list,
  noDrillsConfig,
  resources,
  scratchDir,
  statements,
  str,
  synth,
} from "./helpers";

const s = synth();
const t = s.destinations[0]!;
const inputs = cliInputs();
const drill = inputs.destinations[0]!.drill!;
const text = (x: unknown) => JSON.stringify(x);

/** The example with its text edited (`from` must occur). */
function edited(name: string, from: string | RegExp, to: string): string {
  const original = readFileSync(EXAMPLE, "utf8");
  const changed = original.replace(from, to);
  assert.notEqual(changed, original, `${String(from)} is not in ${EXAMPLE}`);
  const path = join(scratchDir(`snapcourier-${name}-`), `${name}.yaml`);
  writeFileSync(path, changed);
  return path;
}

/** The statements of the drill step's role, resources and condition values resolved to text. */
function drillStatements(template: Template): { Sid?: string; Action: string[]; Resource: string[]; Condition?: unknown }[] {
  return statements(template)
    .filter(({ roles }) => text(roles).includes('"DrillRole'))
    .map(({ s: st }) => ({
      Sid: st.Sid,
      Action: list(st.Action),
      Resource: list(st.Resource as unknown).map(str),
      ...(st.Condition ? { Condition: st.Condition } : {}),
    }));
}

const byName = <T extends { Properties: Record<string, unknown> }>(rs: [string, T][], key: string, value: string): [string, T] => {
  const found = rs.filter(([, r]) => r.Properties[key] === value);
  assert.equal(found.length, 1, `${key} ${value}`);
  return found[0]!;
};

const RDS = "arn:aws:rds:eu-west-1:222222222222";
const REDSHIFT = "arn:aws:redshift:eu-west-1:222222222222";
const EC = "arn:aws:elasticache:eu-west-1:222222222222";
const VAULT = "sc-demo-vault-222222222222-eu-west-1";
const SLR = "arn:aws:iam::222222222222:role/aws-service-role/elasticache.amazonaws.com/AWSServiceRoleForElastiCache";
const OURS = { StringEquals: { "aws:RequestTag/snapcourier:namespace": "demo" } };
const COPY_KEY = "arn:aws:kms:eu-west-1:222222222222:key/00000002-0000-4000-8000-222222222222";

describe("restore drill", () => {
  it("comes from `snapcourier inputs`: the example checks daily for weekly drills in eu-west-1", () => {
    assert.equal(drill.name, "_drills");
    assert.equal(drill.expression, "rate(1 day)");
    assert.equal(drill.every_seconds, 7 * 86_400);
    assert.deepEqual(drill.input.regions, ["eu-west-1"]);
    // The 4h restore timeout plus an hour to delete what was restored.
    assert.equal(drill.execution_timeout_seconds, 5 * 3600);
  });

  it("deploys its run, exactly the drill state machine's input, as `<deployed runs>_drills`; the schedule passes the same", () => {
    const [, parameter] = byName(resources(t, "AWS::SSM::Parameter"), "Name", "/snapcourier/demo/destination/runs/_drills");
    assert.equal(parameter.Properties.Type, "String");
    assert.equal(parameter.Properties.Tier, "Standard");
    assert.deepEqual(JSON.parse(parameter.Properties.Value as string), drill.input);
    const schedules = resources(t, "AWS::Scheduler::Schedule").filter(([, r]) => "drills" in JSON.parse((r.Properties.Target as any).Input));
    assert.equal(schedules.length, 1);
    assert.equal((schedules[0]![1].Properties.Target as any).Input, parameter.Properties.Value);
  });

  it("has the drill step: a function like the other steps (copy-in's memory and timeout), its own log group and role", () => {
    const fns = resources(t, "AWS::Lambda::Function");
    const [, fn] = byName(fns, "FunctionName", "snapcourier-demo-destination-drill");
    const [, copyIn] = byName(fns, "FunctionName", "snapcourier-demo-destination-copy-in-destination");
    const p = fn.Properties as Record<string, any>;
    const c = copyIn.Properties as Record<string, any>;
    for (const key of ["Runtime", "Architectures", "Handler", "MemorySize", "Timeout", "LoggingConfig"]) {
      if (key === "LoggingConfig") assert.equal(p[key].LogFormat, c[key].LogFormat);
      else assert.deepEqual(p[key], c[key], key);
    }
    assert.deepEqual(p.Environment.Variables, {
      SNAPCOURIER_MAX_ATTEMPTS: "5",
      SNAPCOURIER_DEPLOYED_RUNS: "/snapcourier/demo/destination/runs/",
    });
    assert.match(p.Role["Fn::GetAtt"][0], /^DrillRole/);
    t.hasResourceProperties("AWS::IAM::Role", { RoleName: "snapcourier-demo-destination-drill" });
    t.hasResourceProperties("AWS::Logs::LogGroup", { LogGroupName: "/aws/lambda/snapcourier-demo-destination-drill", RetentionInDays: 365 });
  });

  describe("the drill step's role", () => {
    const all = drillStatements(t);
    const sid = (name: string) => {
      const found = all.filter((x) => x.Sid === name);
      assert.equal(found.length, 1, name);
      return found[0]!;
    };

    it("has exactly these statements, each with a sid", () => {
      assert.deepEqual(
        all.map((x) => x.Sid),
        [
          "DescribeOnly",
          "RestoreDrillClusters",
          "AddDrillClusterInstances",
          "RestoreDrillInstances",
          "TagDrillDatabasesAtCreation",
          "DeleteDrillDatabases",
          "DrillKeysViaRdsGrants",
          "DrillKeysViaRdsUse",
          "RestoreDrillRedshiftClusters",
          "TagDrillRedshiftClusters",
          "DeleteDrillRedshiftClusters",
          "ListDrillVaultCopies",
          "ReadDrillVaultCopies",
          "DecryptDrillVaultCopiesViaS3",
          "SeedDrillCaches",
          "TagDrillCachesAtCreation",
          "DeleteDrillCaches",
          "CreateElastiCacheServiceLinkedRole",
          "KeepDrillRecords",
          "WriteOwnLogs",
          "ReadDeployedRuns",
        ],
      );
    });

    it("reads its own deployed run only, and keeps its records under /snapcourier/demo/destination/drills/ in the stack's region", () => {
      assert.deepEqual(sid("ReadDeployedRuns"), {
        Sid: "ReadDeployedRuns",
        Action: ["ssm:GetParameter"],
        Resource: ["arn:aws:ssm:us-east-1:222222222222:parameter/snapcourier/demo/destination/runs/_drills"],
      });
      assert.deepEqual(sid("KeepDrillRecords"), {
        Sid: "KeepDrillRecords",
        Action: ["ssm:GetParametersByPath", "ssm:PutParameter"],
        Resource: ["arn:aws:ssm:us-east-1:222222222222:parameter/snapcourier/demo/destination/drills/*"],
      });
      assert.deepEqual(sid("WriteOwnLogs").Action, ["logs:CreateLogStream", "logs:PutLogEvents"]);
      assert.match(sid("WriteOwnLogs").Resource[0]!, /DrillLogs/);
    });

    it("describes databases, snapshots and replication groups only in the drill regions", () => {
      assert.deepEqual(sid("DescribeOnly"), {
        Sid: "DescribeOnly",
        Action: [
          "elasticache:DescribeReplicationGroups",
          "rds:DescribeDBClusterSnapshots",
          "rds:DescribeDBClusters",
          "rds:DescribeDBInstances",
          "rds:DescribeDBSnapshots",
          "redshift:DescribeClusterSnapshots",
          "redshift:DescribeClusters",
        ],
        Resource: ["*"],
        Condition: { StringEquals: { "aws:RequestedRegion": ["eu-west-1"] } },
      });
    });

    it("restores only into sc-demo-dr-* databases that carry our namespace tag from creation, from our copies", () => {
      assert.deepEqual(sid("RestoreDrillClusters"), {
        Sid: "RestoreDrillClusters",
        Action: ["rds:RestoreDBClusterFromSnapshot"],
        Resource: [`${RDS}:cluster:sc-demo-dr-*`, `${RDS}:cluster-snapshot:sc-demo-*`, `${RDS}:cluster-pg:*`, `${RDS}:og:*`, `${RDS}:subgrp:*`],
        Condition: OURS,
      });
      assert.deepEqual(sid("AddDrillClusterInstances"), {
        Sid: "AddDrillClusterInstances",
        Action: ["rds:CreateDBInstance"],
        Resource: [`${RDS}:db:sc-demo-dr-*`, `${RDS}:cluster:sc-demo-dr-*`, `${RDS}:og:*`, `${RDS}:pg:*`, `${RDS}:subgrp:*`],
        Condition: OURS,
      });
      assert.deepEqual(sid("RestoreDrillInstances"), {
        Sid: "RestoreDrillInstances",
        Action: ["rds:RestoreDBInstanceFromDBSnapshot"],
        Resource: [`${RDS}:db:sc-demo-dr-*`, `${RDS}:snapshot:sc-demo-*`, `${RDS}:og:*`, `${RDS}:pg:*`, `${RDS}:subgrp:*`],
        Condition: OURS,
      });
      assert.deepEqual(sid("TagDrillDatabasesAtCreation"), {
        Sid: "TagDrillDatabasesAtCreation",
        Action: ["rds:AddTagsToResource"],
        Resource: [`${RDS}:cluster:sc-demo-dr-*`, `${RDS}:db:sc-demo-dr-*`],
        Condition: OURS,
      });
      // Redshift: the source account's shares (its copies stay there); tagged right after.
      assert.deepEqual(sid("RestoreDrillRedshiftClusters"), {
        Sid: "RestoreDrillRedshiftClusters",
        Action: ["redshift:RestoreFromClusterSnapshot"],
        Resource: [`${REDSHIFT}:cluster:sc-demo-dr-*`, "arn:aws:redshift:eu-west-1:111111111111:snapshot:*/sc-demo-*"],
      });
      assert.deepEqual(sid("TagDrillRedshiftClusters"), {
        Sid: "TagDrillRedshiftClusters",
        Action: ["redshift:CreateTags"],
        Resource: [`${REDSHIFT}:cluster:sc-demo-dr-*`],
        Condition: OURS,
      });
    });

    it("deletes only sc-demo-dr-* databases and caches (RDS ones tagged ours), and never takes a final snapshot", () => {
      assert.deepEqual(sid("DeleteDrillDatabases"), {
        Sid: "DeleteDrillDatabases",
        Action: ["rds:DeleteDBCluster", "rds:DeleteDBInstance"],
        Resource: [`${RDS}:cluster:sc-demo-dr-*`, `${RDS}:db:sc-demo-dr-*`],
        Condition: { StringEquals: { "aws:ResourceTag/snapcourier:namespace": "demo" } },
      });
      assert.deepEqual(sid("DeleteDrillRedshiftClusters"), {
        Sid: "DeleteDrillRedshiftClusters",
        Action: ["redshift:DeleteCluster"],
        Resource: [`${REDSHIFT}:cluster:sc-demo-dr-*`],
      });
      for (const x of all) {
        for (const a of x.Action) {
          // A final snapshot would need these: the drill always skips it.
          assert.doesNotMatch(a, /^(rds|redshift|elasticache):Create(DB|Cluster)?(Cluster)?Snapshot$/, x.Sid);
          if (/:Delete/.test(a)) {
            for (const r of x.Resource) assert.match(r, /:(cluster|db|replicationgroup):sc-demo-dr-\*$/, `${x.Sid}: ${a} on ${r}`);
          }
        }
      }
    });

    it("touches our copies only as the source of a restore: nothing deletes, modifies, shares, copies or tags a snapshot", () => {
      const restores = ["rds:RestoreDBClusterFromSnapshot", "rds:RestoreDBInstanceFromDBSnapshot", "redshift:RestoreFromClusterSnapshot"];
      for (const x of all) {
        if (!x.Resource.some((r) => /:(cluster-snapshot|snapshot):/.test(r))) continue;
        assert.deepEqual(x.Action.filter((a) => !restores.includes(a)), [], `${x.Sid} acts on snapshots`);
      }
      for (const a of all.flatMap((x) => x.Action).filter((x) => !restores.includes(x) && !/:Describe/.test(x))) {
        assert.doesNotMatch(a, /Snapshots?(Attribute)?$|SnapshotAccess$|^rds:(Copy|Modify)|^rds:RemoveTags/, a);
      }
    });

    it("uses only the drill regions' copy keys, only through RDS there (grants only for AWS resources)", () => {
      const via = { "kms:ViaService": ["rds.eu-west-1.amazonaws.com"] };
      assert.deepEqual(sid("DrillKeysViaRdsGrants"), {
        Sid: "DrillKeysViaRdsGrants",
        Action: ["kms:CreateGrant"],
        Resource: [COPY_KEY],
        Condition: { StringEquals: via, Bool: { "kms:GrantIsForAWSResource": "true" } },
      });
      assert.deepEqual(sid("DrillKeysViaRdsUse"), {
        Sid: "DrillKeysViaRdsUse",
        Action: ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"],
        Resource: [COPY_KEY],
        Condition: { StringEquals: via },
      });
    });

    it("invokes no function when the config names no validation function", () => {
      assert.ok(!all.some((x) => x.Action.some((a) => a.startsWith("lambda:"))));
    });

    it("ElastiCache: lists and reads the drill region's vault under sc-demo-*, decrypting only through S3 there", () => {
      assert.deepEqual(sid("ListDrillVaultCopies"), {
        Sid: "ListDrillVaultCopies",
        Action: ["s3:ListBucket"],
        Resource: [`arn:aws:s3:::${VAULT}`],
        Condition: { StringLike: { "s3:prefix": "sc-demo-*" } },
      });
      assert.deepEqual(sid("ReadDrillVaultCopies"), {
        Sid: "ReadDrillVaultCopies",
        Action: ["s3:GetObject"],
        Resource: [`arn:aws:s3:::${VAULT}/sc-demo-*`],
      });
      assert.deepEqual(sid("DecryptDrillVaultCopiesViaS3"), {
        Sid: "DecryptDrillVaultCopiesViaS3",
        Action: ["kms:Decrypt"],
        Resource: [COPY_KEY],
        Condition: { StringEquals: { "kms:ViaService": ["s3.eu-west-1.amazonaws.com"] } },
      });
    });

    it("ElastiCache: seeds only sc-demo-dr-* replication groups tagged ours, deletes them by name, may create ElastiCache's service-linked role", () => {
      assert.deepEqual(sid("SeedDrillCaches"), {
        Sid: "SeedDrillCaches",
        Action: ["elasticache:CreateReplicationGroup"],
        Resource: [`${EC}:replicationgroup:sc-demo-dr-*`, `${EC}:cluster:sc-demo-dr-*`, `${EC}:parametergroup:*`, `${EC}:subnetgroup:*`],
        Condition: OURS,
      });
      assert.deepEqual(sid("TagDrillCachesAtCreation"), {
        Sid: "TagDrillCachesAtCreation",
        Action: ["elasticache:AddTagsToResource"],
        Resource: [`${EC}:replicationgroup:sc-demo-dr-*`, `${EC}:cluster:sc-demo-dr-*`],
        Condition: OURS,
      });
      assert.deepEqual(sid("DeleteDrillCaches"), {
        Sid: "DeleteDrillCaches",
        Action: ["elasticache:DeleteReplicationGroup"],
        Resource: [`${EC}:replicationgroup:sc-demo-dr-*`],
      });
      assert.deepEqual(sid("CreateElastiCacheServiceLinkedRole"), {
        Sid: "CreateElastiCacheServiceLinkedRole",
        Action: ["iam:CreateServiceLinkedRole"],
        Resource: [SLR],
        Condition: { StringEquals: { "iam:AWSServiceName": "elasticache.amazonaws.com" } },
      });
    });
  });

  describe("the drill step's role, evaluated (test/helpers.ts allowed)", () => {
    const call = (action: string, key: string, context: Call["context"] = {}): Call => ({ role: "DrillRole", action, key, context, why: `${action} ${key}` });
    const ours = { "aws:ResourceTag/snapcourier:namespace": "demo" };
    const restored = `${RDS}:cluster:sc-demo-dr-202612020300-orders-db`;

    it("may delete what a drill restored", () => {
      for (const c of [
        call("rds:DeleteDBCluster", restored, ours),
        call("rds:DeleteDBInstance", `${RDS}:db:sc-demo-dr-202612020300-orders-db-1`, ours),
        call("rds:DeleteDBInstance", `${RDS}:db:sc-demo-dr-202612020300-ledger-db`, ours),
        call("redshift:DeleteCluster", `${REDSHIFT}:cluster:sc-demo-dr-202612020300-warehouse-1`),
      ]) {
        assert.ok(allowed(t, c), c.why);
      }
    });

    it("may not delete a database it did not restore, nor any snapshot", () => {
      for (const c of [
        call("rds:DeleteDBCluster", `${RDS}:cluster:orders-db`, ours),
        call("rds:DeleteDBCluster", `${RDS}:cluster:orders-db`),
        call("rds:DeleteDBInstance", `${RDS}:db:ledger-db`, ours),
        call("redshift:DeleteCluster", `${REDSHIFT}:cluster:warehouse-1`),
        // Named like a drill's, but not tagged ours (RDS tags restores at creation).
        call("rds:DeleteDBCluster", restored),
        call("rds:DeleteDBCluster", restored, { "aws:ResourceTag/snapcourier:namespace": "other" }),
        // Outside the drill regions.
        call("rds:DeleteDBCluster", "arn:aws:rds:us-east-1:222222222222:cluster:sc-demo-dr-202612020300-orders-db", ours),
        // Snapshots: our copies and anyone's.
        call("rds:DeleteDBClusterSnapshot", `${RDS}:cluster-snapshot:sc-demo-auroradaily-orders-db-20261201-0300`, { "rds:cluster-snapshot-tag/snapcourier:namespace": "demo" }),
        call("rds:DeleteDBSnapshot", `${RDS}:snapshot:sc-demo-rdsdaily-ledger-db-20261201-0300`, { "rds:snapshot-tag/snapcourier:namespace": "demo" }),
        call("rds:DeleteDBCluster", `${RDS}:cluster-snapshot:sc-demo-auroradaily-orders-db-20261201-0300`, ours),
        call("redshift:DeleteClusterSnapshot", "arn:aws:redshift:eu-west-1:111111111111:snapshot:warehouse-1/sc-demo-warehousedaily-warehouse-1-20261201-0000"),
        // Final snapshots.
        call("rds:CreateDBClusterSnapshot", `${RDS}:cluster-snapshot:sc-demo-dr-202612020300-orders-db-final`, { "aws:RequestTag/snapcourier:namespace": "demo" }),
      ]) {
        assert.ok(!allowed(t, c), `allowed: ${c.why} ${text(c.context)}`);
      }
    });

    it("may restore our copies only into sc-demo-dr-* databases tagged ours, and tag nothing else", () => {
      const tagged = { "aws:RequestTag/snapcourier:namespace": "demo" };
      for (const key of [restored, `${RDS}:cluster-snapshot:sc-demo-auroradaily-orders-db-20261201-0300`, `${RDS}:subgrp:drills`, `${RDS}:og:default:aurora-postgresql-15`]) {
        assert.ok(allowed(t, call("rds:RestoreDBClusterFromSnapshot", key, tagged)), key);
      }
      for (const c of [
        call("rds:RestoreDBClusterFromSnapshot", restored),
        call("rds:RestoreDBClusterFromSnapshot", `${RDS}:cluster:orders-db`, tagged),
        call("rds:RestoreDBClusterFromSnapshot", `${RDS}:cluster-snapshot:manual-orders`, tagged),
        call("rds:AddTagsToResource", `${RDS}:cluster-snapshot:sc-demo-auroradaily-orders-db-20261201-0300`, tagged),
        call("rds:AddTagsToResource", `${RDS}:db:orders-db`, tagged),
        call("rds:ModifyDBClusterSnapshotAttribute", `${RDS}:cluster-snapshot:sc-demo-auroradaily-orders-db-20261201-0300`, tagged),
      ]) {
        assert.ok(!allowed(t, c), `allowed: ${c.why}`);
      }
    });

    it("may write its records and read its own run, and no other parameter", () => {
      const ssm = "arn:aws:ssm:us-east-1:222222222222:parameter/snapcourier/demo/destination";
      assert.ok(allowed(t, call("ssm:PutParameter", `${ssm}/drills/eu-west-1/aurora-daily/orders-db`)));
      assert.ok(allowed(t, call("ssm:GetParametersByPath", `${ssm}/drills/eu-west-1/`)));
      assert.ok(allowed(t, call("ssm:GetParameter", `${ssm}/runs/_drills`)));
      assert.ok(!allowed(t, call("ssm:PutParameter", `${ssm}/runs/_drills`)));
      assert.ok(!allowed(t, call("ssm:PutParameter", `${ssm}/runs/aurora-daily`)));
      assert.ok(!allowed(t, call("ssm:GetParameter", `${ssm}/runs/aurora-daily`)));
      assert.ok(!allowed(t, call("ssm:DeleteParameter", `${ssm}/drills/eu-west-1/aurora-daily/orders-db`)));
    });

    it("may use the copy key only through RDS in the drill region", () => {
      const via = { "kms:ViaService": "rds.eu-west-1.amazonaws.com" };
      assert.ok(allowed(t, call("kms:CreateGrant", COPY_KEY, { ...via, "kms:GrantIsForAWSResource": "true" })));
      for (const a of ["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"]) assert.ok(allowed(t, call(a, COPY_KEY, via)), a);
      assert.ok(!allowed(t, call("kms:Decrypt", COPY_KEY)), "directly");
      assert.ok(!allowed(t, call("kms:CreateGrant", COPY_KEY, via)), "a grant not for an AWS resource");
      assert.ok(!allowed(t, call("kms:Encrypt", COPY_KEY, via)));
      const copyInKey = "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222";
      assert.ok(!allowed(t, call("kms:Decrypt", copyInKey, { "kms:ViaService": "rds.us-east-1.amazonaws.com" })), "not a drill region's key");
    });

    describe("ElastiCache (cache-daily): caches seeded from the vault", () => {
      const group = `${EC}:replicationgroup:sc-demo-dr-202612020300-carts-valkey`;
      const tagged = { "aws:RequestTag/snapcourier:namespace": "demo" };
      const object = `arn:aws:s3:::${VAULT}/sc-demo-cachedaily-carts-valkey-20261202-0000-0001.rdb`;
      const manifest = `arn:aws:s3:::${VAULT}/sc-demo-cachedaily-carts-valkey-20261202-0000.manifest-20261202T001500Z.json`;
      const viaS3 = { "kms:ViaService": "s3.eu-west-1.amazonaws.com" };
      const all = drillStatements(t);

      it("may seed an sc-demo-dr-* replication group tagged ours (its clusters, parameter and subnet groups), tag it at creation and delete it", () => {
        for (const c of [
          call("elasticache:CreateReplicationGroup", group, tagged),
          call("elasticache:CreateReplicationGroup", `${EC}:cluster:sc-demo-dr-202612020300-carts-valkey-0001-001`, tagged),
          call("elasticache:CreateReplicationGroup", `${EC}:parametergroup:default.valkey8.cluster.on`, tagged),
          call("elasticache:CreateReplicationGroup", `${EC}:subnetgroup:drills`, tagged),
          call("elasticache:AddTagsToResource", group, tagged),
          call("elasticache:AddTagsToResource", `${EC}:cluster:sc-demo-dr-202612020300-carts-valkey-0002-001`, tagged),
          call("elasticache:DeleteReplicationGroup", group),
          call("elasticache:DeleteReplicationGroup", group, ours),
        ]) {
          assert.ok(allowed(t, c), `${c.why} ${text(c.context)}`);
        }
      });

      it("may not create, tag or delete another replication group, nor snapshot (no final snapshot) or delete a snapshot", () => {
        for (const c of [
          call("elasticache:CreateReplicationGroup", `${EC}:replicationgroup:carts-valkey`, tagged),
          call("elasticache:CreateReplicationGroup", `${EC}:cluster:carts-valkey-0001-001`, tagged),
          // Named like the drill's, but not tagged ours at creation.
          call("elasticache:CreateReplicationGroup", group),
          call("elasticache:CreateReplicationGroup", group, { "aws:RequestTag/snapcourier:namespace": "other" }),
          // Outside the drill regions.
          call("elasticache:CreateReplicationGroup", "arn:aws:elasticache:us-east-1:222222222222:replicationgroup:sc-demo-dr-202612020300-carts-valkey", tagged),
          call("elasticache:DeleteReplicationGroup", `${EC}:replicationgroup:carts-valkey`, ours),
          call("elasticache:DeleteReplicationGroup", `${EC}:replicationgroup:sc-demo-cachedaily-carts-valkey`, ours),
          call("elasticache:DeleteReplicationGroup", "arn:aws:elasticache:us-east-1:222222222222:replicationgroup:sc-demo-dr-202612020300-carts-valkey"),
          call("elasticache:DeleteCacheCluster", `${EC}:cluster:sc-demo-dr-202612020300-carts-valkey-0001-001`),
          call("elasticache:ModifyReplicationGroup", group, ours),
          call("elasticache:AddTagsToResource", `${EC}:replicationgroup:carts-valkey`, tagged),
          call("elasticache:AddTagsToResource", `${EC}:snapshot:sc-demo-cachedaily-carts-valkey-20261202-0000`, tagged),
          call("elasticache:RemoveTagsFromResource", group, ours),
          call("elasticache:CreateSnapshot", group, tagged),
          call("elasticache:CreateSnapshot", `${EC}:snapshot:sc-demo-dr-202612020300-carts-valkey-final`, tagged),
          call("elasticache:DeleteSnapshot", `${EC}:snapshot:sc-demo-cachedaily-carts-valkey-20261202-0000`, ours),
        ]) {
          assert.ok(!allowed(t, c), `allowed: ${c.why} ${text(c.context)}`);
        }
        assert.ok(!all.some((x) => x.Action.includes("elasticache:CreateSnapshot")), "no statement grants a snapshot");
      });

      it("may list and read sc-demo-* objects of the drill region's vault (decrypted only through S3 there), and never write, delete or unlock one", () => {
        for (const c of [
          call("s3:ListBucket", `arn:aws:s3:::${VAULT}`, { "s3:prefix": "sc-demo-cachedaily-" }),
          call("s3:GetObject", manifest),
          call("s3:GetObject", object),
          call("kms:Decrypt", COPY_KEY, viaS3),
        ]) {
          assert.ok(allowed(t, c), `${c.why} ${text(c.context)}`);
        }
        for (const c of [
          call("s3:ListBucket", `arn:aws:s3:::${VAULT}`),
          call("s3:ListBucket", `arn:aws:s3:::${VAULT}`, { "s3:prefix": "other-" }),
          call("s3:ListBucketVersions", `arn:aws:s3:::${VAULT}`, { "s3:prefix": "sc-demo-cachedaily-" }),
          call("s3:GetObject", `arn:aws:s3:::${VAULT}/other.rdb`),
          call("s3:GetObject", "arn:aws:s3:::sc-demo-export-111111111111-us-east-1/sc-demo-cachedaily-carts-valkey-20261202-0000-0001.rdb"),
          call("s3:GetObject", "arn:aws:s3:::sc-demo-vault-222222222222-us-east-1/sc-demo-cachedaily-carts-valkey-20261202-0000-0001.rdb"),
          call("s3:DeleteObject", object),
          call("s3:DeleteObjectVersion", object),
          call("s3:PutObject", object),
          call("s3:PutObjectRetention", object),
          call("s3:BypassGovernanceRetention", object),
          call("s3:PutBucketPolicy", `arn:aws:s3:::${VAULT}`),
          call("kms:Decrypt", COPY_KEY),
          call("kms:Decrypt", COPY_KEY, { "kms:ViaService": "s3.us-east-1.amazonaws.com" }),
          call("kms:GenerateDataKey", COPY_KEY, viaS3),
          call("kms:Decrypt", "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222", { "kms:ViaService": "s3.us-east-1.amazonaws.com" }),
        ]) {
          assert.ok(!allowed(t, c), `allowed: ${c.why} ${text(c.context)}`);
        }
        for (const x of all) {
          for (const a of x.Action.filter((y) => y.startsWith("s3:"))) assert.ok(["s3:GetObject", "s3:ListBucket"].includes(a), `${x.Sid}: ${a}`);
        }
      });

      it("may create ElastiCache's service-linked role, and no other role", () => {
        assert.ok(allowed(t, call("iam:CreateServiceLinkedRole", SLR, { "iam:AWSServiceName": "elasticache.amazonaws.com" })));
        for (const c of [
          call("iam:CreateServiceLinkedRole", SLR),
          call("iam:CreateServiceLinkedRole", SLR, { "iam:AWSServiceName": "rds.amazonaws.com" }),
          call("iam:CreateServiceLinkedRole", "arn:aws:iam::222222222222:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS", { "iam:AWSServiceName": "rds.amazonaws.com" }),
          call("iam:CreateRole", "arn:aws:iam::222222222222:role/anything"),
          call("iam:PassRole", SLR),
        ]) {
          assert.ok(!allowed(t, c), `allowed: ${c.why} ${text(c.context)}`);
        }
      });
    });
  });

  it("runs drill.asl.json as reviewed, with exactly its placeholders substituted and the drill's timeout", () => {
    const [, sm] = byName(resources(t, "AWS::StepFunctions::StateMachine"), "StateMachineName", "snapcourier-demo-destination-drill");
    const p = sm.Properties as Record<string, any>;
    const asl = readFileSync(join(STATEMACHINE_DIR, "drill.asl.json"), "utf8");
    assert.deepEqual(placeholders(asl), ["DrillFunctionArn", "FailureTopicArn"]);
    assert.deepEqual(JSON.parse(p.DefinitionString), { ...JSON.parse(asl), TimeoutSeconds: drill.execution_timeout_seconds });
    assert.deepEqual(Object.keys(p.DefinitionSubstitutions).sort(), placeholders(asl));
    const fnId = p.DefinitionSubstitutions.DrillFunctionArn["Fn::GetAtt"][0];
    assert.equal(t.toJSON().Resources[fnId].Properties.FunctionName, "snapcourier-demo-destination-drill");
    assert.match(p.DefinitionSubstitutions.FailureTopicArn.Ref, /^FailureTopic/);
    assert.deepEqual(p.TracingConfiguration, { Enabled: true });
    assert.equal(p.LoggingConfiguration.Level, "ALL");
    assert.equal(p.LoggingConfiguration.IncludeExecutionData, false);
    t.hasResourceProperties("AWS::Logs::LogGroup", {
      LogGroupName: "/aws/vendedlogs/states/snapcourier-demo-destination-drill",
      RetentionInDays: 365,
    });
  });

  it("has a state machine role of its own that may invoke the drill step and publish failure reports, like the main one's", () => {
    const [roleId] = byName(resources(t, "AWS::IAM::Role"), "RoleName", "snapcourier-demo-destination-drill-states");
    const [mainRoleId] = byName(resources(t, "AWS::IAM::Role"), "RoleName", "snapcourier-demo-destination-states");
    const of = (id: string) => statements(t).filter(({ roles }) => text(roles).includes(`"${id}"`)).map(({ s: st }) => st);
    const drillRole = of(roleId);
    const invokes = drillRole.filter((st) => list(st.Action).includes("lambda:InvokeFunction"));
    assert.equal(invokes.length, 1);
    for (const r of list(invokes[0]!.Resource as unknown)) assert.match(text(r), /"Drill[0-9A-F]{8}"/);
    // The same failure-report statements as the main state machine's role.
    const reports = (sts: typeof drillRole) => sts.filter((st) => st.Sid === "PublishFailureReports" || st.Sid === "EncryptFailureReportsViaSns");
    assert.equal(reports(drillRole).length, 2);
    assert.deepEqual(reports(drillRole), reports(of(mainRoleId)));
  });

  it("is scheduled in the stack's group with the others' retries and dead letters; the scheduler may start it", () => {
    const schedules = resources(t, "AWS::Scheduler::Schedule");
    const [, sched] = schedules.find(([, r]) => "drills" in JSON.parse((r.Properties.Target as any).Input))!;
    const [, other] = schedules.find(([, r]) => "schedule" in JSON.parse((r.Properties.Target as any).Input))!;
    const p = sched.Properties as Record<string, any>;
    const o = other.Properties as Record<string, any>;
    assert.equal(p.ScheduleExpression, drill.expression);
    assert.equal(p.ScheduleExpressionTimezone, "UTC");
    assert.equal(p.State, "ENABLED");
    assert.deepEqual(p.GroupName, o.GroupName);
    assert.deepEqual(JSON.parse(p.Target.Input), drill.input);
    assert.match(p.Target.Arn.Ref, /^DrillStateMachine/);
    for (const key of ["RoleArn", "RetryPolicy", "DeadLetterConfig"]) assert.deepEqual(p.Target[key], o.Target[key], key);
    const starts = statements(t).filter(({ roles, s: st }) => text(roles).includes('"SchedulerRole') && list(st.Action).includes("states:StartExecution"));
    assert.deepEqual(
      starts.map(({ s: st }) => (st.Resource as { Ref: string }).Ref.replace(/[0-9A-F]{8}$/, "")).sort(),
      ["DrillStateMachine", "StateMachine"],
    );
  });

  describe("alarms to the failure topic", () => {
    const alarms = resources(t, "AWS::CloudWatch::Alarm").map(([, r]) => r.Properties as Record<string, any>);
    const alarm = (name: string) => {
      const found = alarms.filter((a) => a.AlarmName === name);
      assert.equal(found.length, 1, name);
      return found[0]!;
    };
    const dims = [
      { Name: "Deployment", Value: "demo" },
      { Name: "Side", Value: "destination" },
    ];
    const sorted = (d: { Name: string }[]) => [...d].sort((a, b) => a.Name.localeCompare(b.Name));

    it("when a drill execution fails, times out or is aborted", () => {
      for (const [suffix, metric] of [
        ["failed", "ExecutionsFailed"],
        ["timed-out", "ExecutionsTimedOut"],
        ["aborted", "ExecutionsAborted"],
      ] as const) {
        const a = alarm(`snapcourier-demo-destination-drill-executions-${suffix}`);
        assert.equal(a.MetricName, metric);
        assert.equal(a.Namespace, "AWS/States");
        assert.match(a.Dimensions[0].Value.Ref, /^DrillStateMachine/);
        assert.equal(a.Threshold, 1);
        assert.equal(a.ComparisonOperator, "GreaterThanOrEqualToThreshold");
        assert.match(a.AlarmActions[0].Ref, /^FailureTopic/);
      }
    });

    it("when a drill fails (DrillSucceeded below 1 in an hour)", () => {
      const a = alarm("snapcourier-demo-destination-drill-failed");
      assert.equal(a.Namespace, "snapcourier");
      assert.equal(a.MetricName, "DrillSucceeded");
      assert.deepEqual(sorted(a.Dimensions), dims);
      assert.equal(a.Statistic, "Minimum");
      assert.equal(a.Period, 3600);
      assert.equal(a.EvaluationPeriods, 1);
      assert.equal(a.Threshold, 1);
      assert.equal(a.ComparisonOperator, "LessThanThreshold");
      assert.equal(a.TreatMissingData, "notBreaching");
      assert.match(a.AlarmActions[0].Ref, /^FailureTopic/);
    });

    it("when no drill succeeded within two drill intervals (DrillAge above 2 x every)", () => {
      const a = alarm("snapcourier-demo-destination-drill-overdue");
      assert.equal(a.Namespace, "snapcourier");
      assert.equal(a.MetricName, "DrillAge");
      assert.deepEqual(sorted(a.Dimensions), dims);
      assert.equal(a.Statistic, "Maximum");
      assert.equal(a.Period, 86_400);
      assert.equal(a.Threshold, 2 * drill.every_seconds);
      assert.equal(a.Threshold, 14 * 86_400);
      assert.equal(a.ComparisonOperator, "GreaterThanThreshold");
      assert.equal(a.TreatMissingData, "notBreaching");
      assert.match(a.AlarmDescription, /two drill intervals \(14 days; drills\.every is 7 days\)/);
      assert.match(a.AlarmDescription, /executions of the snapcourier-demo-destination-drill state machine/);
      assert.match(a.AlarmActions[0].Ref, /^FailureTopic/);
    });

    it("follows drills.every: a 30-day drill is overdue after 60 days", () => {
      const path = edited("monthly", "every: 7d", "every: 30d");
      const monthly = cliInputs(path).destinations[0]!.drill!;
      assert.equal(monthly.every_seconds, 30 * 86_400);
      const other = synth(path).destinations[0]!;
      other.hasResourceProperties("AWS::CloudWatch::Alarm", {
        AlarmName: "snapcourier-demo-destination-drill-overdue",
        Threshold: 2 * monthly.every_seconds,
      });
    });

    it("are on the dashboard, with the restore seconds (RTO) and the drill age", () => {
      const [[, dash]] = resources(t, "AWS::CloudWatch::Dashboard") as [[string, any]];
      const body = JSON.stringify(dash.Properties.DashboardBody).replace(/[\\"]/g, "");
      assert.ok(body.includes("Restore drill alarms"));
      assert.ok(body.includes("RestoreSeconds,Deployment,demo,Side,destination"), "RestoreSeconds");
      assert.ok(body.includes("stat:Maximum"));
      assert.ok(body.includes("DrillAge,Deployment,demo,Side,destination"), "DrillAge");
      for (const id of ["DrillFailed", "DrillOverdue", "DrillExecutionsFailed", "DrillExecutionsTimedOut", "DrillExecutionsAborted"]) {
        assert.match(body, new RegExp(`${id}[0-9A-F]{8},Arn`), id);
      }
    });
  });

  it("names every drill resource so that the vault's guardrails (service control policy) cover it", () => {
    const { config } = loadConfig(EXAMPLE, CLI);
    const scp = serviceControlPolicy(config, inputs.vault) as { Statement: { Sid: string; Resource: string | string[] }[] };
    const protectedArns = scp.Statement.flatMap((st) => (st.Sid.endsWith("Stacks") || st.Sid.endsWith("Puts") ? list(st.Resource ?? []) : []));
    const covered = (arn: string) => protectedArns.some((p) => glob(p, arn));
    for (const arn of [
      "arn:aws:lambda:us-east-1:222222222222:function:snapcourier-demo-destination-drill",
      "arn:aws:states:us-east-1:222222222222:stateMachine:snapcourier-demo-destination-drill",
      "arn:aws:states:us-east-1:222222222222:execution:snapcourier-demo-destination-drill:x",
      "arn:aws:iam::222222222222:role/snapcourier-demo-destination-drill",
      "arn:aws:iam::222222222222:role/snapcourier-demo-destination-drill-states",
      "arn:aws:scheduler:us-east-1:222222222222:schedule/snapcourier-demo-destination/Scheduledrills-x",
      "arn:aws:ssm:us-east-1:222222222222:parameter/snapcourier/demo/destination/runs/_drills",
      "arn:aws:ssm:us-east-1:222222222222:parameter/snapcourier/demo/destination/drills/eu-west-1/aurora-daily/orders-db",
      "arn:aws:logs:us-east-1:222222222222:log-group:/aws/lambda/snapcourier-demo-destination-drill",
      "arn:aws:logs:us-east-1:222222222222:log-group:/aws/vendedlogs/states/snapcourier-demo-destination-drill",
      "arn:aws:cloudwatch:us-east-1:222222222222:alarm:snapcourier-demo-destination-drill-overdue",
    ]) {
      assert.ok(covered(arn), arn);
    }
    // The names those ARNs assume are the stack's.
    const names = (type: string, key: string) => resources(t, type).map(([, r]) => String(r.Properties[key]));
    assert.ok(names("AWS::Lambda::Function", "FunctionName").includes("snapcourier-demo-destination-drill"));
    for (const name of names("AWS::CloudWatch::Alarm", "AlarmName").filter((n) => n.includes("drill"))) {
      assert.match(name, /^snapcourier-demo-destination-drill-/);
    }
  });

  it("has cdk-nag findings acknowledged with the drill's own reasons (test/nag.test.ts: none left)", () => {
    let drillRole = 0;
    for (const c of s.built.destinations[0]!.node.findAll()) {
      if (!/\/DrillRole\//.test(c.node.path)) continue;
      for (const m of c.node.metadata.filter((x) => x.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)) {
        for (const reason of Object.values(m.data as Record<string, string>)) {
          drillRole += 1;
          assert.match(reason, /^Restore drill/, c.node.path);
        }
      }
    }
    assert.ok(drillRole >= 5, `${drillRole} acknowledgements`);
  });

  describe("with the keys the stacks create", () => {
    it("uses the drill region's key found by its alias, only through RDS there", () => {
      const keyless = synth(keylessConfig()).destinations[0]!;
      const kms = drillStatements(keyless).filter((x) => x.Action.some((a) => a.startsWith("kms:")));
      assert.deepEqual(kms.map((x) => x.Sid), [
        "DrillKeysViaRdsByAlias0Grants",
        "DrillKeysViaRdsByAlias0Use",
        "DecryptDrillVaultCopiesViaS3ByAlias0",
      ]);
      for (const x of kms) {
        assert.deepEqual(x.Resource, ["arn:aws:kms:eu-west-1:222222222222:key/*"]);
        assert.deepEqual((x.Condition as any)["ForAnyValue:StringEquals"], { "kms:ResourceAliases": ["alias/snapcourier-demo"] });
        const service = x.Sid!.includes("ViaS3") ? "s3" : "rds";
        assert.deepEqual((x.Condition as any).StringEquals, { "kms:ViaService": [`${service}.eu-west-1.amazonaws.com`] });
      }
      // The ElastiCache vault's manifests: Decrypt only.
      assert.deepEqual(kms[2]!.Action, ["kms:Decrypt"]);
      const call = (action: string, context: Call["context"]): Call => ({
        role: "DrillRole",
        action,
        key: "arn:aws:kms:eu-west-1:222222222222:key/5e1f0001-0000-4000-8000-222222222222",
        context: { "kms:ViaService": "rds.eu-west-1.amazonaws.com", ...context },
        why: action,
      });
      assert.ok(allowed(keyless, call("kms:Decrypt", { "kms:ResourceAliases": ["alias/snapcourier-demo"] })));
      assert.ok(
        allowed(keyless, call("kms:Decrypt", { "kms:ResourceAliases": ["alias/snapcourier-demo"], "kms:ViaService": "s3.eu-west-1.amazonaws.com" })),
        "the vault's manifests, through S3",
      );
      assert.ok(
        !allowed(keyless, call("kms:GenerateDataKey", { "kms:ResourceAliases": ["alias/snapcourier-demo"], "kms:ViaService": "s3.eu-west-1.amazonaws.com" })),
        "no data key through S3",
      );
      assert.ok(allowed(keyless, call("kms:CreateGrant", { "kms:ResourceAliases": ["alias/snapcourier-demo"], "kms:GrantIsForAWSResource": "true" })));
      assert.ok(!allowed(keyless, call("kms:Decrypt", { "kms:ResourceAliases": ["alias/other"] })));
    });
  });

  describe("with a validation function", () => {
    const fn = "arn:aws:lambda:eu-west-1:222222222222:function:check-restore";
    const path = edited("validated", "  # validation_function: ", "  validation_function: ");

    it("may invoke exactly that function, and it is in the deployed run", () => {
      const other = synth(path).destinations[0]!;
      const invokes = drillStatements(other).filter((x) => x.Action.some((a) => a.startsWith("lambda:")));
      assert.deepEqual(invokes, [{ Sid: "InvokeValidationFunction", Action: ["lambda:InvokeFunction"], Resource: [fn] }]);
      const [, parameter] = byName(resources(other, "AWS::SSM::Parameter"), "Name", "/snapcourier/demo/destination/runs/_drills");
      assert.equal(JSON.parse(parameter.Properties.Value as string).drills.validation_function, fn);
    });
  });

  describe("without drills", () => {
    const path = noDrillsConfig();

    it("`snapcourier inputs` prints no drill", () => {
      assert.equal(cliInputs(path).destinations[0]!.drill, undefined);
    });

    it("the destination stack has no drill resource at all", () => {
      const plain = synth(path);
      const d = plain.destinations[0]!;
      assert.equal(plain.built.destinations[0]!.drill, undefined);
      assert.deepEqual(
        resources(d, "AWS::Lambda::Function").map(([, r]) => r.Properties.FunctionName).sort(),
        ["copy-in-destination", "cross-region-copy", "delete"].map((x) => `snapcourier-demo-destination-${x}`),
      );
      assert.deepEqual(resources(d, "AWS::StepFunctions::StateMachine").map(([, r]) => r.Properties.StateMachineName), ["snapcourier-demo-destination"]);
      // One per schedule: the example has four.
      assert.equal(resources(d, "AWS::Scheduler::Schedule").length, 4);
      assert.equal(resources(d, "AWS::SSM::Parameter").length, 4);
      const everything = JSON.stringify(d.toJSON());
      for (const word of ["drill", "Drill", "_drills"]) assert.ok(!everything.includes(word), word);
    });
  });
});
