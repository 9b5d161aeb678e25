// ElastiCache (examples/snapcourier.yaml has cache-daily): the source's export bucket and its
// key, each destination region's vault bucket (Object Lock), their policies (ElastiCache of the
// destination may read the vault's copies to seed a cache: the restore drill's, or by hand),
// the steps' S3 and ElastiCache permissions (evaluated per call), the vault buckets in the
// service control policy; and a config without an ElastiCache schedule gets none of it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Template } from "aws-cdk-lib/assertions";
import { parse } from "yaml";
import { loadConfig } from "../lib/config";
import { SCP_VAULT_BUCKET_ACTIONS, serviceControlPolicy, VAULT_BUCKET_ACTIONS } from "../lib/vault";
import {
  CLI,
  EXAMPLE,
  type Call,
  type Context,
  type Resource,
  allowed,
  cliInputs,
  conditionsHold,
  glob,
  keylessConfig,
  list,
  resources,
  scratchDir,
  statements,
  synth,
} from "./helpers";

/** The example as an object, edited by `edit`, written as JSON (the CDK reads both). */
function variant(name: string, edit: (config: any) => void, from = EXAMPLE): string {
  const config = parse(readFileSync(from, "utf8"));
  edit(config);
  const path = join(scratchDir(`snapcourier-${name}-`), `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const s = synth();
const inputs = cliInputs();
const source = s.source;
const destination = s.destinations[0]!;
const euWest1 = Template.fromStack(s.built.regionStacks.find((r) => r.region === "eu-west-1")!);

const EXPORTS = "sc-demo-export-111111111111-us-east-1";
const VAULT = "sc-demo-vault-222222222222-eu-west-1";
const VAULT_KEY = "arn:aws:kms:eu-west-1:222222222222:key/00000002-0000-4000-8000-222222222222";
const SOURCE_KEY = "arn:aws:kms:us-east-1:111111111111:key/0e0e0e0e-0000-4000-8000-111111111111";
const COPY_IN = "arn:aws:iam::222222222222:role/snapcourier-demo-destination-copy-in-destination";
const ADMINS = [
  "arn:aws:iam::222222222222:role/snapcourier-break-glass",
  "arn:aws:iam::222222222222:role/cdk-hnb659fds-deploy-role-*",
  "arn:aws:iam::222222222222:role/cdk-hnb659fds-cfn-exec-role-*",
];
const EC = "arn:aws:elasticache:us-east-1:111111111111";
/** ElastiCache's service principal in the vault's region. */
const ELASTICACHE_EU = "eu-west-1.elasticache-snapshot.amazonaws.com";
const OURS = { "aws:RequestTag/snapcourier:namespace": "demo" };
const TAGGED = { "aws:ResourceTag/snapcourier:namespace": "demo" };

/** The one resource of `type` whose logical id starts with `prefix`. */
function one(t: Template, type: string, prefix: string): [string, Resource] {
  const found = resources(t, type).filter(([id]) => id.startsWith(prefix));
  assert.equal(found.length, 1, `${type} ${prefix}: ${found.map(([id]) => id)}`);
  return found[0]!;
}

/** A template value as text where the tests can know it: the partition is `aws`, a bucket's
 * Arn is `arn:aws:s3:::<its name>`, any other attribute `<logical id>`. */
function value(v: unknown, t: Template): unknown {
  if (Array.isArray(v)) return v.map((x) => value(x, t));
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if ("Fn::GetAtt" in o) {
      const [id] = o["Fn::GetAtt"] as [string];
      const bucket = t.toJSON().Resources[id]?.Properties?.BucketName as string | undefined;
      return bucket ? `arn:aws:s3:::${bucket}` : `<${id}>`;
    }
    if ("Fn::Join" in o) {
      const [sep, parts] = o["Fn::Join"] as [string, unknown[]];
      return parts.map((x) => value(x, t)).join(sep);
    }
    if (o.Ref === "AWS::Partition") return "aws";
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, value(x, t)]));
  }
  return v;
}

/** A policy document's statements, resolved as `value` does. */
function resolved(doc: unknown, t: Template): any[] {
  return (value(doc, t) as { Statement: any[] }).Statement;
}

const bySid = (statementList: any[], sid: string) => {
  const found = statementList.filter((x) => x.Sid === sid);
  assert.equal(found.length, 1, sid);
  return found[0];
};

/** Whether a resolved resource policy (a bucket's or a key's) allows `service`, a service
 * principal, the call: some Allow statement names the principal, action and resource and its
 * conditions hold (the Deny statements these policies carry concern other actions, or plain
 * HTTP). */
function serviceMay(st: any[], service: string, action: string, key: string, context: Context): boolean {
  return st.some(
    (x) =>
      x.Effect === "Allow" &&
      list(x.Principal?.Service ?? []).includes(service) &&
      list(x.Action).some((a: string) => glob(a, action)) &&
      list(x.Resource).some((r: string) => glob(r, key)) &&
      conditionsHold(x.Condition, context),
  );
}

function check(t: Template, calls: (Call & { allowed: boolean })[]): void {
  for (const c of calls) {
    assert.equal(allowed(t, c), c.allowed, `${c.why}: ${c.role} ${c.action} on ${c.key} with ${JSON.stringify(c.context)}`);
  }
}

describe("ElastiCache", () => {
  it("comes from `snapcourier inputs`: the engine table's s3-export transport, the export bucket, a vault per destination region", () => {
    assert.equal(inputs.engines.find((e) => e.engine === "elasticache")?.transport, "s3-export");
    assert.deepEqual(
      inputs.engines.filter((e) => e.transport === "s3-export").map((e) => e.name),
      ["elasticache"],
    );
    assert.deepEqual(inputs.export_bucket, { bucket: EXPORTS, region: "us-east-1", key_prefix: "sc-demo-", readers: ["222222222222"] });
    assert.deepEqual(inputs.destinations[0]!.vaults, [
      { region: "eu-west-1", bucket: VAULT, kms_key: VAULT_KEY, object_lock: "GOVERNANCE", lock_days: 35, key_prefix: "sc-demo-" },
    ]);
  });

  describe("the source's export bucket", () => {
    it("has its exact name, its own rotated key (bucket key on), ACLs disabled, public access blocked, and is retained", () => {
      const [bucketId] = one(source, "AWS::S3::Bucket", "ExportBucket");
      const [keyId] = one(source, "AWS::KMS::Key", "ExportKey");
      source.hasResource("AWS::S3::Bucket", {
        Properties: {
          BucketName: EXPORTS,
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              {
                BucketKeyEnabled: true,
                ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: { "Fn::GetAtt": [keyId, "Arn"] } },
              },
            ],
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
        },
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
      });
      source.hasResource("AWS::KMS::Key", {
        Properties: { EnableKeyRotation: true },
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
      });
      source.hasResourceProperties("AWS::KMS::Alias", {
        AliasName: "alias/snapcourier-demo-exports",
        TargetKeyId: { "Fn::GetAtt": [keyId, "Arn"] },
      });
      // Not versioned: the source's retention deletes expired exports for good. No lifecycle.
      const [, bucket] = one(source, "AWS::S3::Bucket", "ExportBucket");
      assert.equal(bucket.Properties.VersioningConfiguration, undefined);
      assert.equal(bucket.Properties.LifecycleConfiguration, undefined);
      assert.ok(bucketId);
    });

    it("lets ElastiCache of this account export into it, and the destinations' copy-in roles list and read only sc-demo-* objects, SSL only", () => {
      const [, policy] = one(source, "AWS::S3::BucketPolicy", "ExportBucketPolicy");
      const st = resolved(policy.Properties.PolicyDocument, source);
      const service = { Service: "us-east-1.elasticache-snapshot.amazonaws.com" };
      const onlyThisAccount = { StringEquals: { "aws:SourceAccount": "111111111111" } };
      const bucketLevel = bySid(st, "ElastiCacheExportsOfThisAccount");
      assert.deepEqual(bucketLevel.Principal, service);
      assert.deepEqual(list(bucketLevel.Action).sort(), ["s3:GetBucketAcl", "s3:ListBucket", "s3:ListBucketMultipartUploads"]);
      assert.equal(bucketLevel.Resource, `arn:aws:s3:::${EXPORTS}`);
      assert.deepEqual(bucketLevel.Condition, onlyThisAccount);
      const objects = bySid(st, "ElastiCacheWritesOurExports");
      assert.deepEqual(objects.Principal, service);
      assert.deepEqual(list(objects.Action).sort(), ["s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"]);
      assert.equal(objects.Resource, `arn:aws:s3:::${EXPORTS}/sc-demo-*`);
      assert.deepEqual(objects.Condition, onlyThisAccount);

      const lists = bySid(st, "DestinationsCopyInListsOurExports");
      assert.deepEqual(lists.Principal, { AWS: "arn:aws:iam::222222222222:root" });
      assert.equal(lists.Action, "s3:ListBucket");
      assert.equal(lists.Resource, `arn:aws:s3:::${EXPORTS}`);
      assert.deepEqual(lists.Condition, { StringLike: { "s3:prefix": "sc-demo-*" }, ArnEquals: { "aws:PrincipalArn": [COPY_IN] } });
      const reads = bySid(st, "DestinationsCopyInReadsOurExports");
      assert.deepEqual(reads.Principal, { AWS: "arn:aws:iam::222222222222:root" });
      assert.equal(reads.Action, "s3:GetObject");
      assert.equal(reads.Resource, `arn:aws:s3:::${EXPORTS}/sc-demo-*`);
      assert.deepEqual(reads.Condition, { ArnEquals: { "aws:PrincipalArn": [COPY_IN] } });
      // Nothing else is allowed; plain HTTP is refused.
      assert.equal(st.filter((x) => x.Effect === "Allow").length, 4);
      const deny = st.filter((x) => x.Effect === "Deny");
      assert.deepEqual(deny.map((x) => x.Condition), [{ Bool: { "aws:SecureTransport": "false" } }]);
    });

    it("has a key policy: this account administers it, ElastiCache of this account writes with it, the copy-in roles only decrypt through S3", () => {
      const [, key] = one(source, "AWS::KMS::Key", "ExportKey");
      const st = resolved(key.Properties.KeyPolicy, source);
      const admin = st.find((x) => x.Principal?.AWS === "arn:aws:iam::111111111111:root");
      assert.equal(admin.Action, "kms:*");
      const service = bySid(st, "ElastiCacheWritesExportsOfThisAccount");
      assert.deepEqual(service.Principal, { Service: "us-east-1.elasticache-snapshot.amazonaws.com" });
      assert.deepEqual(list(service.Action).sort(), ["kms:Decrypt", "kms:GenerateDataKey"]);
      assert.deepEqual(service.Condition, { StringEquals: { "aws:SourceAccount": "111111111111" } });
      const readers = bySid(st, "DestinationsCopyInReadsExportsViaS3");
      assert.deepEqual(readers.Principal, { AWS: "arn:aws:iam::222222222222:root" });
      assert.deepEqual(list(readers.Action).sort(), ["kms:Decrypt", "kms:DescribeKey"]);
      assert.deepEqual(readers.Condition, {
        StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": ["222222222222"] },
        ArnEquals: { "aws:PrincipalArn": [COPY_IN] },
      });
      assert.equal(st.length, 3);
    });

    it("is the source's only bucket, and the source database keys' statements stay RDS's (ElastiCache's exports use the export key)", () => {
      assert.equal(resources(source, "AWS::S3::Bucket").length, 1);
      const outputs = source.toJSON().Outputs as Record<string, { Value: string }>;
      const policy = JSON.parse(outputs.SourceKeyPolicyStatements!.Value) as any[];
      for (const st of policy) assert.equal(st.Condition.StringEquals["kms:ViaService"], "rds.us-east-1.amazonaws.com");
    });
  });

  describe("the destinations' vault buckets", () => {
    it("one per destination region in that region's stack: exact name, versioned, Object Lock GOVERNANCE for the floor's 35 days, the region's key, retained", () => {
      // eu-west-1 is the example's only destination region: its regional stack holds it.
      assert.equal(resources(destination, "AWS::S3::Bucket").length, 0);
      euWest1.hasResource("AWS::S3::Bucket", {
        Properties: {
          BucketName: VAULT,
          VersioningConfiguration: { Status: "Enabled" },
          ObjectLockEnabled: true,
          ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 35 } } },
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: VAULT_KEY } },
            ],
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          // A copy in parts no look completes does not keep its parts for good.
          LifecycleConfiguration: {
            Rules: [{ Id: "AbortStaleCopiesInParts", Status: "Enabled", AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }],
          },
        },
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
      });
      // Its one lifecycle rule aborts stale copies in parts: none expires or moves a copy.
      const [, bucket] = one(euWest1, "AWS::S3::Bucket", "VaultBucket");
      assert.deepEqual(
        (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules.map((r) => Object.keys(r).sort()),
        [["AbortIncompleteMultipartUpload", "Id", "Status"]],
      );
    });

    it("deny unlocking, unversioning, re-keying, expiring, re-policying and deleting them to all but break glass and the deploy roles, and plain HTTP", () => {
      const [, policy] = one(euWest1, "AWS::S3::BucketPolicy", "VaultBucket");
      const st = resolved(policy.Properties.PolicyDocument, euWest1);
      // The only Allows: ElastiCache's reads (the next test).
      assert.deepEqual(
        st.filter((x) => x.Effect === "Allow").map((x) => x.Principal),
        [0, 1, 2].map(() => ({ Service: ELASTICACHE_EU })),
      );
      const guard = bySid(st, "VaultOnlyBreakGlassOrDeployRolesChangeThisVault");
      assert.equal(guard.Effect, "Deny");
      assert.deepEqual(guard.Principal, { AWS: "*" });
      assert.deepEqual(list(guard.Action).sort(), [...VAULT_BUCKET_ACTIONS].sort());
      for (const a of ["s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"]) {
        assert.ok(list(guard.Action).includes(a), a);
      }
      assert.deepEqual(guard.Resource, [`arn:aws:s3:::${VAULT}`, `arn:aws:s3:::${VAULT}/*`]);
      assert.deepEqual(guard.Condition, { ArnNotLike: { "aws:PrincipalArn": ADMINS } });
      assert.ok(st.some((x) => x.Effect === "Deny" && x.Condition?.Bool?.["aws:SecureTransport"] === "false"));
    });

    it("let ElastiCache of this account list and read the sc-demo-* copies (seeding a cache: the restore drill's, or by hand), and nothing else", () => {
      const [, policy] = one(euWest1, "AWS::S3::BucketPolicy", "VaultBucket");
      const st = resolved(policy.Properties.PolicyDocument, euWest1);
      const service = { Service: ELASTICACHE_EU };
      const thisAccount = { "aws:SourceAccount": "222222222222" };
      assert.deepEqual(bySid(st, "ElastiCacheOfThisAccountReadsOurCopies"), {
        Sid: "ElastiCacheOfThisAccountReadsOurCopies",
        Effect: "Allow",
        Principal: service,
        Action: "s3:GetObject",
        Resource: `arn:aws:s3:::${VAULT}/sc-demo-*`,
        Condition: { StringEquals: thisAccount },
      });
      assert.deepEqual(bySid(st, "ElastiCacheOfThisAccountListsOurCopies"), {
        Sid: "ElastiCacheOfThisAccountListsOurCopies",
        Effect: "Allow",
        Principal: service,
        Action: "s3:ListBucket",
        Resource: `arn:aws:s3:::${VAULT}`,
        Condition: { StringEquals: thisAccount, StringLike: { "s3:prefix": "sc-demo-*" } },
      });
      assert.deepEqual(bySid(st, "ElastiCacheOfThisAccountChecksTheVault"), {
        Sid: "ElastiCacheOfThisAccountChecksTheVault",
        Effect: "Allow",
        Principal: service,
        Action: "s3:GetBucketAcl",
        Resource: `arn:aws:s3:::${VAULT}`,
        Condition: { StringEquals: thisAccount },
      });
      const rdb = `arn:aws:s3:::${VAULT}/sc-demo-cachedaily-carts-valkey-20261202-0000-0001.rdb`;
      const may = (action: string, key: string, context: Context, service = ELASTICACHE_EU) => serviceMay(st, service, action, key, context);
      assert.ok(may("s3:GetObject", rdb, thisAccount), "read a copy for this account");
      assert.ok(may("s3:ListBucket", `arn:aws:s3:::${VAULT}`, { ...thisAccount, "s3:prefix": "sc-demo-cachedaily-" }), "list our copies");
      assert.ok(may("s3:GetBucketAcl", `arn:aws:s3:::${VAULT}`, thisAccount), "check the bucket");
      for (const [action, key, context, why, service] of [
        ["s3:GetObject", rdb, {}, "no source account"],
        ["s3:GetObject", rdb, { "aws:SourceAccount": "111111111111" }, "for another account (the source's)"],
        ["s3:GetObject", rdb, { "aws:SourceAccount": "333333333333" }, "for another account"],
        ["s3:GetObject", rdb, thisAccount, "ElastiCache of another region", "us-east-1.elasticache-snapshot.amazonaws.com"],
        ["s3:GetObject", `arn:aws:s3:::${VAULT}/other.rdb`, thisAccount, "another object"],
        ["s3:ListBucket", `arn:aws:s3:::${VAULT}`, thisAccount, "list the whole bucket"],
        ["s3:ListBucket", `arn:aws:s3:::${VAULT}`, { ...thisAccount, "s3:prefix": "other-" }, "list other objects"],
        ["s3:PutObject", rdb, thisAccount, "write"],
        ["s3:DeleteObject", rdb, thisAccount, "delete"],
        ["s3:DeleteObjectVersion", rdb, thisAccount, "delete a version"],
        ["s3:PutObjectRetention", rdb, thisAccount, "change a lock"],
        ["s3:GetObjectVersion", rdb, thisAccount, "read an older version"],
      ] as [string, string, Context, string, string?][]) {
        assert.ok(!may(action, key, context, service), `allowed: ${why}`);
      }
    });

    it("have copy keys that let ElastiCache of this account decrypt the copies only through S3 in the region: in a stack-created key's policy, else in an output", () => {
      const expected = {
        Sid: "ElastiCacheOfThisAccountDecryptsVaultCopiesViaS3",
        Effect: "Allow",
        Principal: { Service: ELASTICACHE_EU },
        Action: ["kms:Decrypt", "kms:DescribeKey"],
        Resource: "*",
        Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com", "aws:SourceAccount": "222222222222" } },
      };
      // The stack's key (the config names none).
      const keyless = synth(keylessConfig());
      const regional = Template.fromStack(keyless.built.regionStacks[0]!);
      const [, key] = one(regional, "AWS::KMS::Key", "CopyKey");
      const st = resolved(key.Properties.KeyPolicy, regional);
      assert.deepEqual(bySid(st, expected.Sid), expected);
      const keyArn = "arn:aws:kms:eu-west-1:222222222222:key/5e1f0001-0000-4000-8000-222222222222";
      const viaS3 = { "kms:ViaService": "s3.eu-west-1.amazonaws.com" };
      assert.ok(serviceMay(st, ELASTICACHE_EU, "kms:Decrypt", keyArn, { ...viaS3, "aws:SourceAccount": "222222222222" }));
      for (const [action, context, why] of [
        ["kms:Decrypt", { "aws:SourceAccount": "222222222222" }, "not through S3"],
        ["kms:Decrypt", { "kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:SourceAccount": "222222222222" }, "through S3 in another region"],
        ["kms:Decrypt", viaS3, "no source account"],
        ["kms:Decrypt", { ...viaS3, "aws:SourceAccount": "111111111111" }, "for another account"],
        ["kms:GenerateDataKey", { ...viaS3, "aws:SourceAccount": "222222222222" }, "encrypt"],
        ["kms:CreateGrant", { ...viaS3, "aws:SourceAccount": "222222222222" }, "a grant"],
      ] as [string, Context, string][]) {
        assert.ok(!serviceMay(st, ELASTICACHE_EU, action, keyArn, context), `allowed: ${why}`);
      }
      // No output there: the statement is in the key's policy.
      assert.deepEqual(Object.keys(regional.toJSON().Outputs ?? {}), []);
      // A key the config names: the regional stack outputs the statement to add by hand.
      const outputs = Object.entries(euWest1.toJSON().Outputs ?? {}) as [string, { Description: string; Value: string }][];
      assert.equal(outputs.length, 1);
      const [id, output] = outputs[0]!;
      assert.match(id, /^VaultKeyPolicyStatement/);
      assert.ok(output.Description.includes(VAULT_KEY), output.Description);
      assert.deepEqual(JSON.parse(output.Value), expected);
      // Nothing else of the vault key's own policy changes: no key resource in that stack.
      assert.equal(resources(euWest1, "AWS::KMS::Key").length, 0);
    });

    it("lock in COMPLIANCE mode when the destination says object_lock: compliance", () => {
      const path = variant("compliance", (c) => {
        c.destinations[0].object_lock = "compliance";
      });
      assert.equal(cliInputs(path).destinations[0]!.vaults[0]!.object_lock, "COMPLIANCE");
      const other = synth(path);
      Template.fromStack(other.built.regionStacks[0]!).hasResourceProperties("AWS::S3::Bucket", {
        BucketName: VAULT,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "COMPLIANCE", Days: 35 } } },
      });
    });

    it("in the source region too, in the destination stack, when the destination keeps copies there", () => {
      const path = variant("home-vault", (c) => {
        c.destinations[0].regions.unshift({
          region: "us-east-1",
          kms_key: "arn:aws:kms:us-east-1:222222222222:key/00000001-0000-4000-8000-222222222222",
        });
        delete c.destinations[0].copy_in_kms_key;
      });
      const other = synth(path);
      Template.fromStack(other.built.destinations[0]!).hasResourceProperties("AWS::S3::Bucket", {
        BucketName: "sc-demo-vault-222222222222-us-east-1",
        ObjectLockEnabled: true,
      });
      Template.fromStack(other.built.regionStacks[0]!).hasResourceProperties("AWS::S3::Bucket", { BucketName: VAULT });
    });

    it("are encrypted with the key the regional stack creates when the config names none, used through S3 by its alias", () => {
      const keyless = synth(keylessConfig());
      const regional = Template.fromStack(keyless.built.regionStacks[0]!);
      const [keyId] = one(regional, "AWS::KMS::Key", "CopyKey");
      regional.hasResourceProperties("AWS::S3::Bucket", {
        BucketName: VAULT,
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: { "Fn::GetAtt": [keyId, "Arn"] } } },
          ],
        },
      });
      const key = "arn:aws:kms:eu-west-1:222222222222:key/5e1f0001-0000-4000-8000-222222222222";
      const via = { "kms:ViaService": "s3.eu-west-1.amazonaws.com" };
      check(keyless.destinations[0]!, [
        { role: "CopyInDestinationRole", action: "kms:GenerateDataKey", key, context: { ...via, "kms:ResourceAliases": ["alias/snapcourier-demo"] }, why: "S3 encrypts a vault copy with the stack's key", allowed: true },
        { role: "CopyInDestinationRole", action: "kms:GenerateDataKey", key, context: { ...via, "kms:ResourceAliases": ["alias/other"] }, why: "another key of the region", allowed: false },
      ]);
    });
  });

  describe("IAM, call by call", () => {
    it("copy-in reads the source's sc-demo-* exports and copies them into the vaults under the lock, and nothing else", () => {
      const role = "CopyInDestinationRole";
      const object = `arn:aws:s3:::${VAULT}/sc-demo-cachedaily-carts-valkey-20261202-0000-0001.rdb`;
      check(destination, [
        { role, action: "s3:ListBucket", key: `arn:aws:s3:::${EXPORTS}`, context: { "s3:prefix": "sc-demo-cachedaily-" }, why: "list the schedule's exports", allowed: true },
        { role, action: "s3:ListBucket", key: `arn:aws:s3:::${EXPORTS}`, context: {}, why: "list the whole bucket", allowed: false },
        { role, action: "s3:ListBucket", key: `arn:aws:s3:::${EXPORTS}`, context: { "s3:prefix": "other-" }, why: "list other objects", allowed: false },
        { role, action: "s3:GetObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "read an export", allowed: true },
        { role, action: "s3:GetObject", key: `arn:aws:s3:::${EXPORTS}/other.rdb`, context: {}, why: "read another object", allowed: false },
        { role, action: "kms:Decrypt", key: SOURCE_KEY, context: { "kms:ViaService": "s3.us-east-1.amazonaws.com" }, why: "S3 decrypts an export", allowed: true },
        { role, action: "kms:Decrypt", key: SOURCE_KEY, context: {}, why: "decrypt directly", allowed: false },
        { role, action: "kms:Decrypt", key: SOURCE_KEY, context: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" }, why: "decrypt through S3 elsewhere", allowed: false },
        { role, action: "s3:ListBucketVersions", key: `arn:aws:s3:::${VAULT}`, context: { "s3:prefix": "sc-demo-cachedaily-" }, why: "list the vault's copies", allowed: true },
        { role, action: "s3:PutObject", key: `arn:aws:s3:::${VAULT}/sc-demo-x-0001.rdb`, context: {}, why: "copy into the vault", allowed: true },
        { role, action: "s3:PutObject", key: object, context: {}, why: "copy into the vault", allowed: true },
        { role, action: "s3:PutObjectRetention", key: object, context: {}, why: "lock the copy (CopyObject's Object Lock headers)", allowed: true },
        { role, action: "s3:GetObject", key: object, context: {}, why: "read the copy's checksum back", allowed: true },
        { role, action: "s3:PutObject", key: `arn:aws:s3:::${VAULT}/other.rdb`, context: {}, why: "write another object", allowed: false },
        { role, action: "s3:PutObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "write into the source's bucket", allowed: false },
        { role, action: "s3:BypassGovernanceRetention", key: object, context: {}, why: "bypass the lock", allowed: false },
        { role, action: "s3:DeleteObjectVersion", key: object, context: {}, why: "delete a copy", allowed: false },
        { role, action: "s3:PutBucketObjectLockConfiguration", key: `arn:aws:s3:::${VAULT}`, context: {}, why: "change the lock", allowed: false },
        { role, action: "kms:GenerateDataKey", key: VAULT_KEY, context: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" }, why: "S3 encrypts the copy with the region's key", allowed: true },
        { role, action: "kms:GenerateDataKey", key: VAULT_KEY, context: {}, why: "a data key directly", allowed: false },
        // A shard over 5 GiB: copied in parts, resumed, aborted when S3 refuses its checksum.
        { role, action: "s3:ListBucketMultipartUploads", key: `arn:aws:s3:::${VAULT}`, context: {}, why: "find a copy in parts under way", allowed: true },
        { role, action: "s3:ListMultipartUploadParts", key: object, context: {}, why: "list the parts already copied", allowed: true },
        { role, action: "s3:AbortMultipartUpload", key: object, context: {}, why: "abort a copy whose checksum S3 refused", allowed: true },
        { role, action: "s3:AbortMultipartUpload", key: `arn:aws:s3:::${VAULT}/other.rdb`, context: {}, why: "abort another upload", allowed: false },
        { role, action: "kms:Decrypt", key: VAULT_KEY, context: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" }, why: "S3 reads the parts back to complete the copy", allowed: true },
        { role, action: "kms:Decrypt", key: VAULT_KEY, context: {}, why: "decrypt a copy directly", allowed: false },
      ]);
      // Never bypassing governance retention, in any statement of any role.
      for (const t of [source, destination]) {
        for (const { s: st } of statements(t)) assert.ok(!list(st.Action).includes("s3:BypassGovernanceRetention"), JSON.stringify(st));
      }
    });

    it("the destination's delete deletes versions under sc-demo-* in the vaults only; cross-region copy has nothing to do with S3", () => {
      const object = `arn:aws:s3:::${VAULT}/sc-demo-x-0001.rdb`;
      check(destination, [
        { role: "DeleteRole", action: "s3:ListBucketVersions", key: `arn:aws:s3:::${VAULT}`, context: { "s3:prefix": "sc-demo-cachedaily-" }, why: "list the copies", allowed: true },
        { role: "DeleteRole", action: "s3:DeleteObjectVersion", key: object, context: {}, why: "delete an expired copy's version", allowed: true },
        { role: "DeleteRole", action: "s3:DeleteObjectVersion", key: `arn:aws:s3:::${VAULT}/other.rdb`, context: {}, why: "delete another object", allowed: false },
        { role: "DeleteRole", action: "s3:DeleteObject", key: object, context: {}, why: "hide a copy behind a delete marker", allowed: false },
        { role: "DeleteRole", action: "s3:BypassGovernanceRetention", key: object, context: {}, why: "bypass the lock", allowed: false },
        { role: "DeleteRole", action: "s3:PutObject", key: object, context: {}, why: "write a copy", allowed: false },
        { role: "DeleteRole", action: "s3:GetObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "read an export", allowed: false },
      ]);
      const crossRegion = statements(destination).filter(({ roles }) => JSON.stringify(roles).includes('"CrossRegionCopyRole'));
      assert.ok(!JSON.stringify(crossRegion).includes("s3:"));
    });

    it("take creates snapshots tagged ours, share exports ours into the export bucket, delete removes tagged ones and their objects", () => {
      const rg = `${EC}:replicationgroup:carts-valkey`;
      const snapshot = `${EC}:snapshot:sc-demo-cachedaily-carts-valkey-20261202-0000`;
      const serverless = `${EC}:serverlesscachesnapshot:sc-demo-cachedaily-profiles-serverless-20261202-0000`;
      check(source, [
        { role: "TakeRole", action: "elasticache:CreateSnapshot", key: rg, context: OURS, why: "snapshot a covered group", allowed: true },
        { role: "TakeRole", action: "elasticache:CreateSnapshot", key: snapshot, context: OURS, why: "the new snapshot, tagged ours", allowed: true },
        { role: "TakeRole", action: "elasticache:CreateSnapshot", key: snapshot, context: {}, why: "an untagged snapshot", allowed: false },
        { role: "TakeRole", action: "elasticache:CreateSnapshot", key: `${EC}:snapshot:manual-1`, context: OURS, why: "another name", allowed: false },
        { role: "TakeRole", action: "elasticache:AddTagsToResource", key: snapshot, context: OURS, why: "tags on create", allowed: true },
        { role: "TakeRole", action: "elasticache:AddTagsToResource", key: rg, context: OURS, why: "tag a cache", allowed: false },
        { role: "TakeRole", action: "elasticache:CreateServerlessCacheSnapshot", key: `${EC}:serverlesscache:profiles-serverless`, context: OURS, why: "snapshot a serverless cache", allowed: true },
        { role: "TakeRole", action: "elasticache:CreateServerlessCacheSnapshot", key: serverless, context: OURS, why: "the new snapshot", allowed: true },
        { role: "TakeRole", action: "s3:ListBucket", key: `arn:aws:s3:::${EXPORTS}`, context: { "s3:prefix": "sc-demo-cachedaily-" }, why: "the schedule's exports", allowed: true },
        { role: "TakeRole", action: "elasticache:DeleteSnapshot", key: snapshot, context: TAGGED, why: "take deletes nothing", allowed: false },
        { role: "ShareRole", action: "elasticache:ListTagsForResource", key: snapshot, context: {}, why: "confirm it is ours", allowed: true },
        { role: "ShareRole", action: "elasticache:CopySnapshot", key: snapshot, context: {}, why: "export a group's snapshot", allowed: true },
        { role: "ShareRole", action: "elasticache:CopySnapshot", key: `${EC}:snapshot:manual-1`, context: {}, why: "export another snapshot", allowed: false },
        { role: "ShareRole", action: "elasticache:ExportServerlessCacheSnapshot", key: serverless, context: {}, why: "export a serverless snapshot", allowed: true },
        { role: "ShareRole", action: "s3:GetBucketAcl", key: `arn:aws:s3:::${EXPORTS}`, context: {}, why: "ElastiCache checks the target bucket", allowed: true },
        { role: "ShareRole", action: "s3:PutObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "ElastiCache checks the caller may write", allowed: true },
        { role: "ShareRole", action: "s3:PutObject", key: `arn:aws:s3:::other-bucket/sc-demo-x-0001.rdb`, context: {}, why: "export elsewhere", allowed: false },
        { role: "ShareRole", action: "s3:DeleteObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "share deletes nothing", allowed: false },
        { role: "DeleteRole", action: "elasticache:DeleteSnapshot", key: snapshot, context: TAGGED, why: "an expired snapshot of ours", allowed: true },
        { role: "DeleteRole", action: "elasticache:DeleteServerlessCacheSnapshot", key: serverless, context: TAGGED, why: "an expired serverless snapshot", allowed: true },
        { role: "DeleteRole", action: "elasticache:DeleteSnapshot", key: snapshot, context: {}, why: "an untagged snapshot named like ours", allowed: false },
        { role: "DeleteRole", action: "elasticache:DeleteSnapshot", key: `${EC}:snapshot:manual-1`, context: TAGGED, why: "another name", allowed: false },
        { role: "DeleteRole", action: "s3:DeleteObject", key: `arn:aws:s3:::${EXPORTS}/sc-demo-x-0001.rdb`, context: {}, why: "an expired export's object", allowed: true },
        { role: "DeleteRole", action: "s3:DeleteObject", key: `arn:aws:s3:::${EXPORTS}/other.rdb`, context: {}, why: "another object", allowed: false },
      ]);
      // The caches' tags only with an opt-in tag (the example's cache-daily has none).
      assert.ok(!allowed(source, { role: "TakeRole", action: "elasticache:ListTagsForResource", key: rg, context: {}, why: "" }));
    });

    it("take reads the caches' tags when an ElastiCache schedule has an opt-in tag", () => {
      const path = variant("opt-in", (c) => {
        c.schedules.find((x: any) => x.engine === "elasticache").opt_in_tag = { key: "backup", value: "true" };
      });
      const t = synth(path).source;
      check(t, [
        { role: "TakeRole", action: "elasticache:ListTagsForResource", key: `${EC}:replicationgroup:carts-valkey`, context: {}, why: "a group's tags", allowed: true },
        { role: "TakeRole", action: "elasticache:ListTagsForResource", key: `${EC}:serverlesscache:profiles-serverless`, context: {}, why: "a serverless cache's tags", allowed: true },
        { role: "TakeRole", action: "elasticache:AddTagsToResource", key: `${EC}:replicationgroup:carts-valkey`, context: OURS, why: "tag a cache", allowed: false },
      ]);
    });
  });

  it("puts the vault buckets in the service control policy: only break glass and the deploy roles change them", () => {
    const { config } = loadConfig(EXAMPLE, CLI);
    const scp = serviceControlPolicy(config, inputs.vault) as { Statement: any[] };
    const stacks = scp.Statement.find((x) => x.Sid === "SnapcourierDemoVaultStacks");
    for (const a of SCP_VAULT_BUCKET_ACTIONS) assert.ok(stacks.Action.includes(a), a);
    for (const a of ["s3:BypassGovernanceRetention", "s3:PutLifecycleConfiguration", "s3:DeleteBucket*", "s3:PutBucket*"]) {
      assert.ok(stacks.Action.includes(a), a);
    }
    // The pattern covers the buckets and their objects (IAM's * spans the slash).
    assert.ok(stacks.Resource.includes("arn:aws:s3:::sc-demo-vault-*"));
    assert.deepEqual(stacks.Condition, {
      ArnNotLike: {
        "aws:PrincipalArn": [
          "arn:aws:iam::*:role/snapcourier-break-glass",
          "arn:aws:iam::*:role/cdk-hnb659fds-deploy-role-*",
          "arn:aws:iam::*:role/cdk-hnb659fds-cfn-exec-role-*",
        ],
      },
    });
  });

  describe("without an ElastiCache schedule", () => {
    const path = variant("no-elasticache", (c) => {
      c.schedules = c.schedules.filter((x: any) => x.engine !== "elasticache");
    });
    const plain = synth(path);
    const templates = [
      plain.source,
      ...plain.destinations,
      ...plain.built.regionStacks.map((r) => Template.fromStack(r)),
    ];

    it("`snapcourier inputs` prints no export bucket and no vaults", () => {
      const printed = cliInputs(path);
      assert.equal(printed.export_bucket, undefined);
      assert.deepEqual(printed.destinations[0]!.vaults, []);
      // The engine table is the whole table: the stacks ask it which scheduled engine exports.
      assert.ok(printed.engines.some((e) => e.transport === "s3-export"));
    });

    it("no bucket, no export key, no ElastiCache or S3 statement", () => {
      for (const t of templates) {
        assert.equal(resources(t, "AWS::S3::Bucket").length, 0);
        // No vault bucket, so no rule reporting changes to one.
        assert.ok(!resources(t, "AWS::Events::Rule").some(([, r]) => r.Properties.Name === "snapcourier-demo-vault-buckets"));
        assert.equal(resources(t, "AWS::S3::BucketPolicy").length, 0);
        assert.ok(!JSON.stringify(t.toJSON()).includes("snapcourier-demo-exports"));
        for (const { s: st } of statements(t)) {
          for (const a of list(st.Action)) assert.doesNotMatch(a, /^(elasticache|s3):/, JSON.stringify(st));
          assert.ok(!JSON.stringify(st.Condition ?? {}).includes("s3."), JSON.stringify(st));
        }
      }
      assert.equal(resources(plain.source, "AWS::KMS::Key").length, 1, "the topic's key only");
    });

    it("no ElastiCache statement in the drill step's role (it drills the other engines)", () => {
      const drill = statements(plain.destinations[0]!).filter(({ roles }) => JSON.stringify(roles).includes('"DrillRole'));
      assert.ok(drill.length > 0, "the drill role");
      assert.ok(list(drill[0]!.s.Action).some((a) => a.startsWith("rds:")), "it still drills RDS");
      const text = JSON.stringify(drill);
      for (const word of ["elasticache", "s3:", "s3.", "CreateServiceLinkedRole", "vault"]) assert.ok(!text.includes(word), word);
    });

    it("no key statement or output for ElastiCache, in the stacks' keys either", () => {
      const keylessPlain = synth(
        variant(
          "no-elasticache-keyless",
          (c) => {
            c.schedules = c.schedules.filter((x: any) => x.engine !== "elasticache");
          },
          keylessConfig(),
        ),
      );
      const all = [...templates, ...keylessPlain.destinations, ...keylessPlain.built.regionStacks.map((r) => Template.fromStack(r))];
      assert.ok(all.some((t) => resources(t, "AWS::KMS::Key").some(([id]) => id.startsWith("CopyKey"))), "a stack-created copy key");
      for (const t of all) {
        // (The deployed drill run names drills.elasticache_node_type: a principal or an action is what
        // must not be there.)
        const text = JSON.stringify(t.toJSON());
        for (const word of ["elasticache-snapshot", "elasticache.amazonaws.com", "elasticache:"]) {
          assert.ok(!text.includes(word), `no ElastiCache principal or statement: ${word}`);
        }
        assert.deepEqual(
          Object.keys(t.toJSON().Outputs ?? {}).filter((k) => k.startsWith("VaultKey")),
          [],
        );
      }
    });

    it("no vault bucket in the service control policy", () => {
      const loaded = loadConfig(path, CLI);
      const text = JSON.stringify(serviceControlPolicy(loaded.config, loaded.inputs.vault));
      assert.ok(!text.includes("s3:"), text);
    });
  });

  it("with ElastiCache alone: the export bucket, and no source database key statements (no snapshot is shared)", () => {
    const path = variant("elasticache-only", (c) => {
      c.schedules = c.schedules.filter((x: any) => x.engine === "elasticache");
      delete c.drills;
      delete c.source.redshift_copy_kms_key;
    });
    const only = synth(path);
    only.source.hasResourceProperties("AWS::S3::Bucket", { BucketName: EXPORTS });
    const outputs = only.source.toJSON().Outputs as Record<string, { Value: string }>;
    assert.match(outputs.SourceKeyPolicyStatements!.Value, /^none needed/);
    // No RDS or Redshift statement either.
    for (const t of [only.source, only.destinations[0]!]) {
      for (const { s: st } of statements(t)) {
        for (const a of list(st.Action)) assert.doesNotMatch(a, /^(rds|redshift):/, JSON.stringify(st));
      }
    }
  });
});
