// Least privilege, checked on the synthesized policies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { list, resources, statements, synth } from "./helpers";

const s = synth();
const templates = [
  { name: "source", t: s.source },
  { name: "destination", t: s.destinations[0]! },
];
const text = (x: unknown) => JSON.stringify(x);
const MUTATING = /^(rds|redshift):(Create|Copy|Delete|Modify|AddTags|Authorize|Revoke|Enable|CreateTags)/;
const NS_TAG = "snapcourier:namespace";

function tagConditioned(c: Record<string, Record<string, unknown>> | undefined): boolean {
  const eq = c?.StringEquals ?? {};
  return Object.entries(eq).some(
    ([k, v]) =>
      (k === `aws:RequestTag/${NS_TAG}` ||
        k === `aws:ResourceTag/${NS_TAG}` ||
        k === `rds:cluster-snapshot-tag/${NS_TAG}` ||
        k === `rds:snapshot-tag/${NS_TAG}`) &&
      v === "demo",
  );
}

describe("IAM", () => {
  for (const { name, t } of templates) {
    describe(name, () => {
      const all = statements(t);

      it("grants no wildcard action", () => {
        for (const { s: st } of all) {
          for (const a of list(st.Action)) assert.ok(!a.includes("*"), `${a} in ${text(st)}`);
        }
      });

      it("lets every delete act only on our prefix and namespace tag", () => {
        const deletes = all.filter(({ s: st }) => list(st.Action).some((a) => /:Delete.*Snapshot$/.test(a)));
        assert.ok(deletes.length > 0);
        for (const { s: st } of deletes) {
          assert.ok(tagConditioned(st.Condition), `no namespace tag condition: ${text(st)}`);
          for (const r of list(st.Resource)) assert.match(text(r), /sc-demo-\*/, text(st));
        }
      });

      it("scopes every mutating snapshot action to sc-demo-* snapshots under a tag condition", () => {
        for (const { s: st } of all) {
          if (!list(st.Action).some((a) => MUTATING.test(a))) continue;
          const snapshotResources = list(st.Resource).filter((r) => /snapshot:/.test(text(r)));
          for (const r of snapshotResources) {
            assert.match(text(r), /snapshot:(\*\/)?(sc-demo-\*|rs:\*)/, text(st));
          }
          const enable = list(st.Action).every((a) => a === "redshift:EnableSnapshotCopy" || a === "redshift:CreateSnapshotCopyGrant");
          // The drill deletes a Redshift cluster it restored by name: the restore takes no tags
          // (test/drill.test.ts). Only its own sc-demo-dr-* clusters.
          const drillRedshiftDelete =
            list(st.Action).every((a) => a === "redshift:DeleteCluster") &&
            list(st.Resource).every((r) => /:redshift:[a-z0-9-]+:222222222222:cluster:sc-demo-dr-\*"/.test(text(r)));
          if (!enable && !drillRedshiftDelete && !list(st.Action).includes("redshift:CopyClusterSnapshot")) {
            assert.ok(tagConditioned(st.Condition), `no namespace tag condition: ${text(st)}`);
          }
        }
      });

      it("allows '*' resources only for describe calls limited to our regions (and CDK's X-Ray/log delivery)", () => {
        for (const { policy, s: st } of all) {
          if (!list(st.Resource).includes("*")) continue;
          if (/StateMachineRole/.test(policy)) {
            for (const a of list(st.Action)) assert.match(a, /^(xray|logs):/, text(st));
            continue;
          }
          for (const a of list(st.Action)) assert.match(a, /^(rds|redshift|elasticache):Describe/, text(st));
          assert.ok(st.Condition?.StringEquals?.["aws:RequestedRegion"], text(st));
        }
      });

      it("invokes only this stack's functions", () => {
        const invokes = all.filter(({ s: st }) => list(st.Action).includes("lambda:InvokeFunction"));
        assert.ok(invokes.length > 0);
        for (const r of invokes.flatMap(({ s: st }) => list(st.Resource))) {
          const fnRef = (r as any)["Fn::GetAtt"]?.[0] ?? (r as any)["Fn::Join"]?.[1]?.[0]?.["Fn::GetAtt"]?.[0];
          assert.equal(t.toJSON().Resources[fnRef]?.Type, "AWS::Lambda::Function", text(r));
        }
      });

      it("uses KMS only through RDS or Redshift (snapshots), SNS (failure reports), SQS (undelivered starts) or S3 (ElastiCache exports)", () => {
        for (const { s: st } of all) {
          const actions = list(st.Action).filter((a) => a.startsWith("kms:") && a !== "kms:DescribeKey");
          if (actions.length === 0) continue;
          const via = list(st.Condition?.StringEquals?.["kms:ViaService"] as string | string[] | undefined);
          assert.ok(via.length > 0, `no kms:ViaService: ${text(st)}`);
          for (const v of via) assert.match(String(v), /^(rds|redshift|sns|sqs|s3)\.[a-z0-9-]+\.amazonaws\.com$/);
          if (list(st.Action).includes("kms:CreateGrant")) {
            assert.deepEqual(st.Condition?.Bool, { "kms:GrantIsForAWSResource": "true" });
          }
        }
      });
    });
  }

  it("lets each step write its own log group and no other (its logs carry the heartbeat metric)", () => {
    for (const t of [s.source, s.destinations[0]!]) {
      const fns = resources(t, "AWS::Lambda::Function");
      for (const [, fn] of fns) {
        const role = (fn.Properties.Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
        const logGroup = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
        const writes = statements(t).filter(
          ({ roles, s: st }) => text(roles).includes(role) && list(st.Action).some((a) => a.startsWith("logs:")),
        );
        assert.equal(writes.length, 1, role);
        assert.deepEqual(list(writes[0]!.s.Action).sort(), ["logs:CreateLogStream", "logs:PutLogEvents"]);
        assert.deepEqual(writes[0]!.s.Resource, { "Fn::GetAtt": [logGroup, "Arn"] });
      }
    }
  });

  it("gives each step exactly the snapshot actions its AWS calls need", () => {
    const byRole = (t: typeof s.source, role: string) =>
      statements(t)
        .filter(({ roles }) => text(roles).includes(role))
        .flatMap(({ s: st }) => list(st.Action))
        .filter((a) => !a.startsWith("logs:"))
        .sort();
    // The example's four engines (cache-daily: ElastiCache snapshots and their exports in S3).
    assert.deepEqual(byRole(s.source, "DeleteRole"), [
      "elasticache:DeleteServerlessCacheSnapshot",
      "elasticache:DeleteSnapshot",
      "elasticache:DescribeServerlessCacheSnapshots",
      "elasticache:DescribeSnapshots",
      "elasticache:ListTagsForResource",
      "rds:DeleteDBClusterSnapshot",
      "rds:DeleteDBSnapshot",
      "rds:DescribeDBClusterSnapshots",
      "rds:DescribeDBSnapshots",
      "redshift:DeleteClusterSnapshot",
      "redshift:DescribeClusterSnapshots",
      "redshift:RevokeSnapshotAccess",
      "s3:DeleteObject",
      "s3:ListBucket",
      "ssm:GetParameter",
    ]);
    assert.ok(byRole(s.source, "TakeRole").includes("states:ListExecutions"));
    // Redshift's untagged cross-region copy is tagged ours by the share step (request tag).
    const tagCopies = statements(s.source).find(({ s: st }) => st.Sid === "TagRedshiftCopiesOurs");
    assert.deepEqual(tagCopies?.s.Condition, { StringEquals: { "aws:RequestTag/snapcourier:namespace": "demo" } });
    assert.match(text(tagCopies?.s.Resource), /redshift:eu-west-1:111111111111:snapshot:\*\/sc-demo-\*/);
    assert.ok(!byRole(s.source, "ShareRole").some((a) => a.startsWith("states:")));
    // The share step never reads a share attribute (adding an account is idempotent).
    assert.ok(!byRole(s.source, "ShareRole").some((a) => a.endsWith("SnapshotAttributes")));
    assert.ok(byRole(s.destinations[0]!, "CopyInDestinationRole").includes("rds:CopyDBClusterSnapshot"));
    assert.ok(!byRole(s.destinations[0]!, "DeleteRole").some((a) => a.startsWith("redshift:")));
  });
});
