// Every KMS call snapcourier makes, directly or through RDS and Redshift on its behalf, checked
// against the statements its role gets, under the request context AWS sets for that call: a
// statement that looks right but never matches (a condition key AWS does not set for that
// action) fails here, where the emulator, which does not evaluate IAM, would pass.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Template } from "aws-cdk-lib/assertions";
import { type Call, type Context, allowed, keylessConfig, synth } from "./helpers";

const SOURCE_KEY = "arn:aws:kms:us-east-1:111111111111:key/0a1b2c3d-0000-4000-8000-111111111111";
const via = (service: string, region: string) => ({ "kms:ViaService": `${service}.${region}.amazonaws.com` });
const grant = { "kms:GrantIsForAWSResource": "true" };

/** What RDS or Redshift asks KMS for when it uses `key` on the role's behalf. */
function throughService(role: string, service: string, region: string, key: string, why: string, extra: Context = {}): Call[] {
  return [
    { role, action: "kms:DescribeKey", key, context: { ...via(service, region), ...extra }, why },
    { role, action: "kms:CreateGrant", key, context: { ...via(service, region), ...grant, ...extra }, why },
  ];
}

function calls(destinationKeys: { copyIn: string; euWest1: string; aliases?: string[] }): { source: Call[]; destination: Call[] } {
  const extra: Context = destinationKeys.aliases ? { "kms:ResourceAliases": destinationKeys.aliases } : {};
  return {
    source: [
      { role: "TakeRole", action: "kms:DescribeKey", key: SOURCE_KEY, context: {}, why: "take: is the database's key aws/rds?" },
      { role: "ShareRole", action: "kms:DescribeKey", key: SOURCE_KEY, context: {}, why: "share: is the snapshot's key aws/rds?" },
      ...throughService(
        "TakeRole",
        "redshift",
        "eu-west-1",
        "arn:aws:kms:eu-west-1:111111111111:key/00000002-0000-4000-8000-111111111111",
        "take: Redshift creates the snapshot copy grant on the copy key",
      ),
    ],
    destination: [
      ...throughService("CopyInDestinationRole", "rds", "us-east-1", SOURCE_KEY, "copy-in: RDS reads the shared snapshot's key"),
      ...throughService("CopyInDestinationRole", "rds", "us-east-1", destinationKeys.copyIn, "copy-in: RDS re-encrypts with this account's key", extra),
      ...throughService("CrossRegionCopyRole", "rds", "us-east-1", destinationKeys.copyIn, "cross-region: RDS reads the intermediate copy's key", extra),
      ...throughService("CrossRegionCopyRole", "rds", "eu-west-1", destinationKeys.euWest1, "cross-region: RDS encrypts with that region's key", extra),
    ],
  };
}

function check(t: Template, expected: Call[]): void {
  for (const call of expected) {
    assert.ok(allowed(t, call), `${call.why}: ${call.role} may not ${call.action} on ${call.key} with ${JSON.stringify(call.context)}`);
  }
}

describe("KMS calls", () => {
  it("every KMS call of the example config's steps is allowed under the context AWS sets", () => {
    const s = synth();
    const expected = calls({
      copyIn: "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222",
      euWest1: "arn:aws:kms:eu-west-1:222222222222:key/00000002-0000-4000-8000-222222222222",
    });
    check(s.source, expected.source);
    check(s.destinations[0]!, expected.destination);
  });

  it("and with the keys the stacks create, found by their alias", () => {
    const s = synth(keylessConfig());
    const expected = calls({
      copyIn: "arn:aws:kms:us-east-1:222222222222:key/5e1f0000-0000-4000-8000-222222222222",
      euWest1: "arn:aws:kms:eu-west-1:222222222222:key/5e1f0001-0000-4000-8000-222222222222",
      aliases: ["alias/snapcourier-demo"],
    });
    check(s.destinations[0]!, expected.destination);
  });

  it("and nothing wider: no grant for a non-AWS resource, no direct use, no other key", () => {
    const s = synth();
    const t = s.destinations[0]!;
    const key = "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222";
    const denied: Call[] = [
      { role: "CopyInDestinationRole", action: "kms:CreateGrant", key, context: via("rds", "us-east-1"), why: "a grant not for an AWS resource" },
      { role: "CopyInDestinationRole", action: "kms:CreateGrant", key, context: grant, why: "a grant made directly, not through RDS" },
      { role: "CopyInDestinationRole", action: "kms:Decrypt", key, context: via("rds", "us-east-1"), why: "decrypting" },
      {
        role: "CopyInDestinationRole",
        action: "kms:DescribeKey",
        key: "arn:aws:kms:us-east-1:333333333333:key/00000001-0000-4000-8000-333333333333",
        context: via("rds", "us-east-1"),
        why: "a third account's key",
      },
    ];
    for (const call of denied) assert.ok(!allowed(t, call), `${call.why} is allowed: ${JSON.stringify(call)}`);
    // The source's direct DescribeKey is on its own keys only.
    assert.ok(
      !allowed(s.source, {
        role: "ShareRole",
        action: "kms:DescribeKey",
        key: "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222",
        context: {},
        why: "another account's key",
      }),
    );
  });
});
