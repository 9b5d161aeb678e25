// KMS: the statements the source's database keys need, the destination keys the stacks create
// when the config names none, and the templates for deploying without CDK.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildStacks } from "../lib/app";
import { CLI, EXAMPLE, cliInputs, keylessConfig, list, resources, scratchDir, statements, synth } from "./helpers";

describe("source key policy", () => {
  const s = synth();
  it("lets only each destination's copy-in role use a source key, only through RDS in the source region", () => {
    const outputs = s.source.toJSON().Outputs as Record<string, { Value: string }>;
    const policy = JSON.parse(outputs.SourceKeyPolicyStatements!.Value) as any[];
    assert.equal(policy.length, 2);
    const role = "arn:aws:iam::222222222222:role/snapcourier-demo-destination-copy-in-destination";
    for (const st of policy) {
      assert.equal(st.Effect, "Allow");
      assert.deepEqual(st.Principal, { AWS: ["arn:aws:iam::222222222222:root"] });
      assert.equal(st.Condition.StringEquals["kms:ViaService"], "rds.us-east-1.amazonaws.com");
      assert.deepEqual(st.Condition.StringEquals["kms:CallerAccount"], ["222222222222"]);
      assert.deepEqual(st.Condition.ArnEquals["aws:PrincipalArn"], [role]);
      for (const action of list(st.Action)) assert.match(action, /^kms:/);
    }
    const grants = policy.find((st) => list(st.Action).includes("kms:CreateGrant"));
    assert.deepEqual(grants.Condition.Bool, { "kms:GrantIsForAWSResource": "true" });
    // The role it names is the destination stack's copy-in role.
    s.destinations[0]!.hasResourceProperties("AWS::IAM::Role", {
      RoleName: "snapcourier-demo-destination-copy-in-destination",
    });
  });
});

describe("destination keys", () => {
  it("creates none when the config names every key", () => {
    const s = synth();
    // eu-west-1's regional stack holds only the vault's rules there.
    assert.equal(s.built.regionStacks.length, 1);
    assert.equal(s.built.regionStacks[0]!.key, undefined);
    assert.equal(resources(s.destinations[0]!, "AWS::KMS::Alias").length, 0);
  });

  it("creates a rotated, retained key with the alias the runs use in each region the config leaves open", () => {
    const path = keylessConfig();
    const s = synth(path);
    const inputs = cliInputs(path);
    assert.deepEqual(inputs.destinations[0]!.stack_key_regions, ["us-east-1", "eu-west-1"]);
    const run = inputs.destinations[0]!.runs[0]!.input as any;
    assert.equal(run.destination.copy_in_kms_key, "arn:aws:kms:us-east-1:222222222222:alias/snapcourier-demo");
    assert.equal(run.destination.regions[0].kms_key, "arn:aws:kms:eu-west-1:222222222222:alias/snapcourier-demo");

    // The source region's key lives in the destination stack, eu-west-1's in its own stack.
    assert.deepEqual(
      s.built.regionStacks.map((k) => [k.stackName, k.account, k.region]),
      [["snapcourier-demo-destination-222222222222-keys-eu-west-1", "222222222222", "eu-west-1"]],
    );
    assert.ok(s.built.destinations[0]!.dependencies.includes(s.built.regionStacks[0]!));
    for (const t of [s.destinations[0]!, Template.fromStack(s.built.regionStacks[0]!)]) {
      t.hasResource("AWS::KMS::Key", {
        Properties: { EnableKeyRotation: true },
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
      });
      t.hasResourceProperties("AWS::KMS::Alias", { AliasName: "alias/snapcourier-demo" });
    }

    // The copy steps may use those keys through RDS, found by alias (IAM never matches an
    // alias ARN as a key's resource). (The drill's restores too: test/drill.test.ts.)
    // (Through S3 too, for ElastiCache's vault copies: test/elasticache.test.ts.)
    const byAlias = statements(s.destinations[0]!).filter(
      (x) =>
        x.s.Condition?.["ForAnyValue:StringEquals"]?.["kms:ResourceAliases"] !== undefined &&
        !JSON.stringify(x.roles).includes('"DrillRole') &&
        !JSON.stringify(x.s.Condition).includes("s3."),
    );
    const resourcesSeen = new Set(byAlias.flatMap((x) => list(x.s.Resource as any).map((r: unknown) => JSON.stringify(r))));
    for (const region of ["us-east-1", "eu-west-1"]) {
      assert.ok([...resourcesSeen].some((r) => r.includes(`:kms:${region}:222222222222:key/*`)), region);
    }
    for (const x of byAlias) {
      assert.deepEqual(x.s.Condition!["ForAnyValue:StringEquals"]!["kms:ResourceAliases"], ["alias/snapcourier-demo"]);
      assert.ok(x.s.Condition!.StringEquals!["kms:ViaService"], "only through RDS");
    }
    // Grants (only for AWS resources) and the key's metadata, in separate statements: KMS sets
    // kms:GrantIsForAWSResource on grant operations only (test/kms.test.ts).
    assert.deepEqual(byAlias.flatMap((x) => list(x.s.Action)).sort(), [
      ...Array(byAlias.length / 2).fill("kms:CreateGrant"),
      ...Array(byAlias.length / 2).fill("kms:DescribeKey"),
    ]);
    for (const x of byAlias.filter((x) => list(x.s.Action).includes("kms:CreateGrant"))) {
      assert.deepEqual(x.s.Condition!.Bool, { "kms:GrantIsForAWSResource": "true" });
    }
  });
});

describe("templates (make templates)", () => {
  it("take the Lambda code from S3 parameters and need no CDK bootstrap", () => {
    const outdir = scratchDir("snapcourier-templates-");
    const app = new App({ outdir });
    const built = buildStacks(app, { config: EXAMPLE, snapcourierBin: CLI });
    app.synth();
    for (const stack of [built.source, ...built.destinations]) {
      const t = Template.fromStack(stack).toJSON();
      assert.deepEqual(Object.keys(t.Parameters).sort(), ["LambdaBucket", "LambdaPrefix"], stack.stackName);
      for (const [, fn] of Object.entries(t.Resources as Record<string, any>).filter(
        ([, r]) => r.Type === "AWS::Lambda::Function",
      )) {
        assert.deepEqual(fn.Properties.Code.S3Bucket, { Ref: "LambdaBucket" });
        assert.match(JSON.stringify(fn.Properties.Code.S3Key), /LambdaPrefix/);
      }
      assert.equal(t.Rules, undefined, "no bootstrap version check");
    }
    assert.deepEqual(
      readdirSync(outdir).filter((f) => f.startsWith("asset.")),
      [],
      "no assets to upload",
    );
  });
});
