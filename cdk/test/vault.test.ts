// The vault's guardrails: the service control policy, the copy keys' policies, and the
// tampering rules in every destination region, with their patterns evaluated on CloudTrail
// events by moto's EventBridge matcher (the emulator's).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Template } from "aws-cdk-lib/assertions";
import { loadConfig } from "../lib/config";
import { KEY_ADMIN_ACTIONS, SCP_MAX_CHARS, serviceControlPolicy, tamperingPatterns } from "../lib/vault";
import { CLI, EXAMPLE, ROOT, cliInputs, keylessConfig, list, noDrillsConfig, resources, synth } from "./helpers";

const s = synth();
const keyless = synth(keylessConfig());
const inputs = cliInputs();
const { config } = loadConfig(EXAMPLE, CLI);
const DEPLOY = ["arn:aws:iam::*:role/cdk-hnb659fds-deploy-role-*", "arn:aws:iam::*:role/cdk-hnb659fds-cfn-exec-role-*"];
const BREAK_GLASS = "arn:aws:iam::*:role/snapcourier-break-glass";

type Statement = { Sid: string; Effect: string; Action: string[]; Resource: string | string[]; Condition: any };

describe("the service control policy for the destination accounts", () => {
  const scp = serviceControlPolicy(config, inputs.vault) as { Statement: Statement[] };
  const bySid = (suffix: string) => scp.Statement.find((st) => st.Sid.endsWith(suffix))!;

  it("fits AWS's limit minified and only denies", () => {
    assert.ok(JSON.stringify(scp).length <= SCP_MAX_CHARS, `${JSON.stringify(scp).length} characters`);
    // The example, drills and ElastiCache's vault buckets included: 4,833 characters; headroom
    // for longer names and more roles.
    assert.ok(JSON.stringify(scp).length <= 4900, `${JSON.stringify(scp).length} characters`);
    for (const st of scp.Statement) assert.equal(st.Effect, "Deny", st.Sid);
  });

  it("denies deleting, sharing or re-tagging our copies to all but our copy roles, the deploy roles and break glass", () => {
    const copies = bySid("Copies");
    for (const a of ["rds:DeleteDBClusterSnapshot", "rds:DeleteDBSnapshot", "rds:ModifyDBClusterSnapshotAttribute", "rds:RemoveTagsFromResource"]) {
      assert.ok(copies.Action.includes(a), a);
    }
    assert.deepEqual(copies.Resource, ["arn:aws:rds:*:*:cluster-snapshot:sc-demo-*", "arn:aws:rds:*:*:snapshot:sc-demo-*"]);
    // The roles of the steps that copy and delete copies, by name: not the drill's (it only
    // restores from them), nor the state machines' or the scheduler's.
    assert.deepEqual(copies.Condition.ArnNotLike["aws:PrincipalArn"], [
      "arn:aws:iam::*:role/snapcourier-demo-destination-copy-in-destination",
      "arn:aws:iam::*:role/snapcourier-demo-destination-cross-region-copy",
      "arn:aws:iam::*:role/snapcourier-demo-destination-delete",
      BREAK_GLASS,
      ...DEPLOY,
    ]);
  });

  it("denies administering our keys and changing our stack resources to all but break glass and the deploy roles", () => {
    for (const sid of ["StackKeys", "NamedKeys", "Stacks"]) {
      const st = bySid(sid);
      // Not the functions: none of them administers a key or changes a stack resource.
      assert.deepEqual(st.Condition.ArnNotLike["aws:PrincipalArn"], [BREAK_GLASS, ...DEPLOY], sid);
    }
    for (const a of KEY_ADMIN_ACTIONS) assert.ok(bySid("StackKeys").Action.includes(a), a);
    // Stack-created keys by their namespace tag (tag changes are denied too), named keys by ARN.
    assert.deepEqual(bySid("StackKeys").Condition.StringEquals, { "aws:ResourceTag/snapcourier:namespace": "demo" });
    assert.ok(bySid("StackKeys").Action.includes("kms:UntagResource"));
    assert.deepEqual(list(bySid("NamedKeys").Resource).sort(), [
      "arn:aws:kms:eu-west-1:222222222222:key/00000002-0000-4000-8000-222222222222",
      "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222",
    ]);
    const stacks = bySid("Stacks");
    for (const r of [
      "arn:aws:lambda:*:*:function:snapcourier-demo-*",
      "arn:aws:states:*:*:stateMachine:snapcourier-demo-*",
      "arn:aws:scheduler:*:*:schedule/snapcourier-demo-*",
      "arn:aws:iam::*:role/snapcourier-demo-*",
      "arn:aws:ssm:*:*:parameter/snapcourier/demo/*",
      "arn:aws:sns:*:*:snapcourier-demo-*",
      "arn:aws:cloudformation:*:*:stack/snapcourier-demo-*",
    ]) {
      assert.ok(list(stacks.Resource).includes(r), r);
    }
    for (const a of ["lambda:Update*", "states:Delete*", "scheduler:Delete*", "iam:Put*", "ssm:DeleteParameter*", "events:DisableRule", "cloudformation:DeleteStack"]) {
      assert.ok(stacks.Action.includes(a), a);
    }
    // Writing a parameter has statements of its own, which except the drill's role (below).
    assert.ok(!stacks.Action.includes("ssm:PutParameter"));
  });

  it("lets the drill's role write its records under /snapcourier/demo/ and no other parameter", () => {
    const sid = (name: string) => scp.Statement.find((st) => st.Sid === `SnapcourierDemoVault${name}`)!;
    const drill = "arn:aws:iam::*:role/snapcourier-demo-destination-drill";
    const puts = sid("Puts");
    assert.deepEqual(list(puts.Action), ["ssm:PutParameter"]);
    assert.deepEqual(puts.Resource, "arn:aws:ssm:*:*:parameter/snapcourier/demo/*");
    assert.deepEqual(puts.Condition.ArnNotLike["aws:PrincipalArn"], [drill, BREAK_GLASS, ...DEPLOY]);
    const only = sid("DrillPuts") as Statement & { NotResource?: string };
    assert.deepEqual(list(only.Action), ["ssm:PutParameter"]);
    assert.equal(only.Resource, undefined);
    assert.equal(only.NotResource, "arn:aws:ssm:*:*:parameter/snapcourier/demo/destination/drills/*");
    assert.deepEqual(only.Condition, { ArnLike: { "aws:PrincipalArn": [drill] } });
    // Deleting or re-tagging any of our parameters stays with break glass and the deploy roles.
    for (const a of ["ssm:DeleteParameter*", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource"]) {
      assert.ok(bySid("Stacks").Action.includes(a), a);
    }
    // Nothing else excepts the drill's role, and no statement denies deleting a database.
    for (const st of scp.Statement.filter((x) => !x.Sid.endsWith("Puts"))) {
      assert.ok(!JSON.stringify(st.Condition).includes("destination-drill"), st.Sid);
      assert.ok(!st.Action.some((a) => /^(rds|redshift):Delete(DBCluster|DBInstance|Cluster)$/.test(a)), st.Sid);
    }
  });

  it("without drills, excepts no drill role: writing a parameter is the deploy roles' and break glass's alone", () => {
    const plain = loadConfig(noDrillsConfig(), CLI);
    const without = serviceControlPolicy(plain.config, plain.inputs.vault) as { Statement: Statement[] };
    assert.ok(JSON.stringify(without).length <= SCP_MAX_CHARS);
    assert.deepEqual(
      without.Statement.map((st) => st.Sid),
      ["Copies", "StackKeys", "NamedKeys", "Stacks"].map((x) => `SnapcourierDemoVault${x}`),
    );
    const stacks = without.Statement.find((st) => st.Sid.endsWith("Stacks"))!;
    assert.ok(stacks.Action.includes("ssm:PutParameter"));
    assert.ok(list(stacks.Resource).includes("arn:aws:ssm:*:*:parameter/snapcourier/demo/*"));
    assert.ok(!JSON.stringify(without).includes("destination-drill"));
  });

  it("names every resource the stacks protect the way the stacks name them", () => {
    const t = s.destinations[0]!;
    t.hasResourceProperties("AWS::SNS::Topic", { TopicName: "snapcourier-demo-destination-failures" });
    t.hasResourceProperties("AWS::Scheduler::ScheduleGroup", { Name: "snapcourier-demo-destination" });
    for (const [, schedule] of resources(t, "AWS::Scheduler::Schedule")) {
      assert.ok(schedule.Properties.GroupName, "every schedule is in our group");
    }
    for (const [, role] of resources(t, "AWS::IAM::Role")) {
      assert.match(String(role.Properties.RoleName), /^snapcourier-demo-destination-/);
    }
    for (const [, rule] of resources(t, "AWS::Events::Rule")) {
      assert.match(String(rule.Properties.Name), /^snapcourier-demo-vault-/);
    }
  });

  it("is written by `make templates` (bin/app.ts, SNAPCOURIER_SCP_OUT)", () => {
    const out = join(ROOT, "target", "scp-test.json");
    execFileSync("npx", ["--no-install", "tsx", "bin/app.ts"], {
      cwd: join(ROOT, "cdk"),
      env: { ...process.env, SNAPCOURIER_SCP_OUT: out, SNAPCOURIER_TEMPLATES: "1", CDK_OUTDIR: join(ROOT, "target", "scp-test.out") },
      stdio: "ignore",
    });
    const written = JSON.parse(readFileSync(out, "utf8"));
    assert.deepEqual(written, serviceControlPolicy(config, inputs.vault));
  });
});

describe("the copy keys", () => {
  const keyTemplates = [keyless.destinations[0]!, ...keyless.built.regionStacks.map((r) => Template.fromStack(r))];

  it("deny disabling, deleting, re-policying and re-aliasing them to all but break glass and the deploy roles", () => {
    let keys = 0;
    for (const t of keyTemplates) {
      for (const [id, key] of resources(t, "AWS::KMS::Key")) {
        if (/TopicKey/.test(id)) continue;
        keys += 1;
        const policy = key.Properties.KeyPolicy as { Statement: any[] };
        const deny = policy.Statement.filter((st) => st.Effect === "Deny");
        assert.equal(deny.length, 1, id);
        assert.deepEqual(deny[0].Principal, { AWS: "*" });
        assert.deepEqual(list(deny[0].Action).sort(), [...KEY_ADMIN_ACTIONS].sort());
        assert.deepEqual(deny[0].Condition.ArnNotLike["aws:PrincipalArn"], [
          "arn:aws:iam::222222222222:role/snapcourier-break-glass",
          "arn:aws:iam::222222222222:role/cdk-hnb659fds-deploy-role-*",
          "arn:aws:iam::222222222222:role/cdk-hnb659fds-cfn-exec-role-*",
        ]);
      }
    }
    // The source region's key (destination stack) and eu-west-1's (its regional stack).
    assert.equal(keys, 2);
  });
});

describe("the tampering rules", () => {
  it("exist in every destination region and reach the failure topic", () => {
    for (const synthesized of [s, keyless]) {
      const home = synthesized.destinations[0]!;
      const topic = Object.keys(home.findResources("AWS::SNS::Topic"))[0]!;
      const rules = resources(home, "AWS::Events::Rule");
      assert.deepEqual(rules.map(([, r]) => r.Properties.Name).sort(), [
        "snapcourier-demo-vault-copies",
        "snapcourier-demo-vault-forwarded",
        "snapcourier-demo-vault-keys",
        "snapcourier-demo-vault-stack",
      ]);
      for (const [, r] of rules) {
        const targets = r.Properties.Targets as { Arn: unknown }[];
        assert.deepEqual(targets.map((x) => x.Arn), [{ Ref: topic }], String(r.Properties.Name));
      }
      // The forwarded rule takes what eu-west-1 sends.
      const forwarded = rules.find(([, r]) => r.Properties.Name === "snapcourier-demo-vault-forwarded")![1];
      assert.deepEqual((forwarded.Properties.EventPattern as any).region, ["eu-west-1"]);
      // EventBridge may publish to the encrypted topic (the grant CDK's SNS target adds).
      const topicKey = resources(home, "AWS::KMS::Key").find(([id]) => /TopicKey/.test(id))![1];
      const allowed = (topicKey.Properties.KeyPolicy as { Statement: any[] }).Statement.filter(
        (st) => st.Principal?.Service === "events.amazonaws.com",
      );
      assert.equal(allowed.length, 1);
      const [[, topicPolicy]] = resources(home, "AWS::SNS::TopicPolicy") as [[string, any]];
      assert.ok(
        topicPolicy.Properties.PolicyDocument.Statement.some(
          (st: any) => st.Principal?.Service === "events.amazonaws.com" && st.Action === "sns:Publish",
        ),
      );

      assert.equal(synthesized.built.regionStacks.length, 1);
      const regional = Template.fromStack(synthesized.built.regionStacks[0]!);
      const there = resources(regional, "AWS::Events::Rule");
      // eu-west-1 holds the vault bucket (ElastiCache): its changes are reported too. The home
      // region (us-east-1) holds none, so no bucket rule there.
      assert.deepEqual(there.map(([, r]) => r.Properties.Name).sort(), [
        "snapcourier-demo-vault-buckets",
        "snapcourier-demo-vault-copies",
        "snapcourier-demo-vault-keys",
        "snapcourier-demo-vault-stack",
      ]);
      assert.ok((forwarded.Properties.EventPattern as any).source.includes("aws.s3"), "forwarded bucket reports");
      for (const [, r] of there) {
        assert.deepEqual((r.Properties.EventPattern as any).region, ["eu-west-1"]);
        const [target] = r.Properties.Targets as { Arn: unknown; RoleArn: unknown }[];
        assert.match(JSON.stringify(target!.Arn), /:events:us-east-1:222222222222:event-bus\/default/);
        assert.ok(target!.RoleArn);
      }
      regional.hasResourceProperties("AWS::IAM::Role", { RoleName: "snapcourier-demo-destination-forward-eu-west-1" });
    }
  });

  describe("match tampering, and not snapcourier's own work (moto's EventBridge matcher)", () => {
    const KEY = "00000002-0000-4000-8000-222222222222";
    const patterns = tamperingPatterns("demo", [KEY]);
    const matches = (pattern: unknown, events: unknown[]): boolean[] =>
      JSON.parse(
        execFileSync(join(ROOT, ".venv", "bin", "python"), [join(__dirname, "eventpattern.py")], {
          input: JSON.stringify({ pattern, events }),
          encoding: "utf8",
        }),
      );
    const admin = { type: "AssumedRole", arn: "arn:aws:sts::222222222222:assumed-role/Admin/alice", sessionContext: { sessionIssuer: { userName: "Admin" } } };
    const ours = {
      type: "AssumedRole",
      arn: "arn:aws:sts::222222222222:assumed-role/snapcourier-demo-destination-delete/x",
      sessionContext: { sessionIssuer: { userName: "snapcourier-demo-destination-delete" } },
    };
    const root = { type: "Root", arn: "arn:aws:iam::222222222222:root" };
    const event = (source: string, eventName: string, userIdentity: unknown, requestParameters: unknown) => ({
      source,
      "detail-type": "AWS API Call via CloudTrail",
      region: "eu-west-1",
      detail: { eventName, userIdentity, requestParameters },
    });

    it("copies: our snapshot deleted or shared by an admin or root, not by our roles, not another snapshot", () => {
      assert.deepEqual(
        matches(patterns.copies, [
          event("aws.rds", "DeleteDBClusterSnapshot", admin, { dBClusterSnapshotIdentifier: "sc-demo-auroradaily-orders-db-20261201-0000" }),
          event("aws.rds", "DeleteDBSnapshot", root, { dBSnapshotIdentifier: "sc-demo-rdsdaily-ledger-db-20261201-0000" }),
          event("aws.rds", "ModifyDBClusterSnapshotAttribute", admin, { dBClusterSnapshotIdentifier: "sc-demo-x", attributeName: "restore" }),
          event("aws.rds", "RemoveTagsFromResource", admin, { resourceName: "arn:aws:rds:eu-west-1:222222222222:cluster-snapshot:sc-demo-x" }),
          event("aws.rds", "DeleteDBClusterSnapshot", ours, { dBClusterSnapshotIdentifier: "sc-demo-auroradaily-orders-db-20261201-0000" }),
          event("aws.rds", "DeleteDBClusterSnapshot", admin, { dBClusterSnapshotIdentifier: "manual-orders" }),
          event("aws.rds", "DeleteDBClusterSnapshot", admin, { dBClusterSnapshotIdentifier: "sc-other-x" }),
        ]),
        [true, true, true, true, false, false, false],
      );
    });

    it("keys: any administration of our key or alias, by anyone; not another key", () => {
      assert.deepEqual(
        matches(patterns.keys, [
          event("aws.kms", "ScheduleKeyDeletion", admin, { keyId: `arn:aws:kms:eu-west-1:222222222222:key/${KEY}`, pendingWindowInDays: 7 }),
          event("aws.kms", "DisableKey", root, { keyId: KEY }),
          event("aws.kms", "PutKeyPolicy", ours, { keyId: KEY, policyName: "default" }),
          event("aws.kms", "UpdateAlias", admin, { aliasName: "alias/snapcourier-demo", targetKeyId: "other" }),
          event("aws.kms", "DisableKey", admin, { keyId: "11111111-2222-3333-4444-555555555555" }),
          event("aws.kms", "Decrypt", admin, { keyId: KEY }),
        ]),
        [true, true, true, true, false, false],
      );
    });

    it("buckets: a vault bucket's lock, versioning, lifecycle, policy or the bucket itself changed, by anyone; not another bucket, not a copy's write", () => {
      const vault = { bucketName: "sc-demo-vault-222222222222-eu-west-1" };
      assert.deepEqual(
        matches(patterns.buckets, [
          event("aws.s3", "PutBucketPolicy", admin, { ...vault, policy: "{}" }),
          event("aws.s3", "PutBucketLifecycle", root, { ...vault, lifecycle: "" }),
          event("aws.s3", "PutObjectLockConfiguration", admin, vault),
          event("aws.s3", "PutBucketVersioning", admin, { ...vault, VersioningConfiguration: { Status: "Suspended" } }),
          event("aws.s3", "DeleteBucket", admin, vault),
          event("aws.s3", "PutBucketPolicy", ours, vault),
          event("aws.s3", "PutBucketPolicy", admin, { bucketName: "someone-elses-bucket" }),
          event("aws.s3", "PutBucketPolicy", admin, { bucketName: "sc-other-vault-222222222222-eu-west-1" }),
          event("aws.s3", "GetBucketPolicy", admin, vault),
        ]),
        [true, true, true, true, true, true, false, false, false],
      );
    });

    it("stack: changes to our functions, state machine, schedules, roles, runs and rules by anyone but snapcourier", () => {
      assert.deepEqual(
        matches(patterns.stack, [
          event("aws.lambda", "UpdateFunctionCode20150331v2", admin, { functionName: "snapcourier-demo-destination-delete" }),
          event("aws.lambda", "PutFunctionConcurrency20171031", root, { functionName: "arn:aws:lambda:us-east-1:222222222222:function:snapcourier-demo-destination-delete" }),
          event("aws.states", "DeleteStateMachine", admin, { stateMachineArn: "arn:aws:states:us-east-1:222222222222:stateMachine:snapcourier-demo-destination" }),
          event("aws.scheduler", "DeleteSchedule", admin, { name: "Schedule-aurora-daily", groupName: "snapcourier-demo-destination" }),
          event("aws.iam", "PutRolePolicy", admin, { roleName: "snapcourier-demo-destination-delete" }),
          event("aws.ssm", "PutParameter", admin, { name: "/snapcourier/demo/destination/runs/aurora-daily" }),
          event("aws.events", "DisableRule", admin, { name: "snapcourier-demo-vault-copies" }),
          event("aws.lambda", "UpdateFunctionCode20150331v2", admin, { functionName: "someone-elses-function" }),
          event("aws.states", "StartExecution", admin, { stateMachineArn: "arn:aws:states:us-east-1:222222222222:stateMachine:snapcourier-demo-destination" }),
        ]),
        [true, true, true, true, true, true, true, false, false],
      );
    });
  });
});
