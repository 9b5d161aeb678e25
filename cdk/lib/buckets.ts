// The buckets of the engines exported through S3 (ElastiCache, transport `s3-export`), named
// as `snapcourier inputs` prints them:
// - the source stack's export bucket, where ElastiCache writes each snapshot's `.rdb` objects
//   (`<region>.elasticache-snapshot.amazonaws.com`, the exporting account only), encrypted
//   with a key of its own that the destinations' copy-in roles may use only to decrypt, only
//   through S3; they may list and read the `sc-<namespace>-*` objects and nothing else;
// - a destination's vault bucket in each destination region: versioned, S3 Object Lock with
//   the config's mode and the vault's floor as default retention, encrypted with that region's
//   copy key, whose lock, versioning, encryption, lifecycle and policy only the break-glass and
//   deploy roles may change (`vaultBucketGuardStatement`). ElastiCache of that account
//   (`<region>.elasticache-snapshot.amazonaws.com`) may read the `sc-<namespace>-*` objects, and
//   decrypt them through S3 with the copy key, to seed a cache from a copy: the restore drill's
//   caches, or an operator's restore during an incident without touching the locked policy.
import { CfnOutput, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { ArnPrincipal, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { type IKey, Key } from "aws-cdk-lib/aws-kms";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectLockRetention,
  ObjectOwnership,
} from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import type { ExportBucket, VaultBucket, VaultInputs } from "./config";
import { vaultBucketGuardStatement } from "./vault";

/** The copy-in role of each destination account: the only reader of the exports. */
export function copyInRoleArns(partition: string, namespace: string, accounts: string[]): string[] {
  return accounts.map((a) => `arn:${partition}:iam::${a}:role/snapcourier-${namespace}-destination-copy-in-destination`);
}

/** ElastiCache's service principal for exports in a region (the User Guide's bucket policy). */
export function elastiCacheExportPrincipal(region: string): string {
  return `${region}.elasticache-snapshot.amazonaws.com`;
}

export interface ExportResources {
  key: Key;
  bucket: Bucket;
}

/**
 * The source stack's export bucket (exactly `exp.bucket`) and its key
 * (`alias/snapcourier-<namespace>-exports`). Retained with the stack: the exports are the
 * destinations' source until they have copied them, and snapcourier's retention deletes them.
 */
export function exportBucket(scope: Construct, namespace: string, exp: ExportBucket): ExportResources {
  const stack = Stack.of(scope);
  const p = stack.partition;
  const service = elastiCacheExportPrincipal(exp.region);
  const readers = copyInRoleArns(p, namespace, exp.readers);
  const ours = `${exp.key_prefix}*`;
  const key = new Key(scope, "ExportKey", {
    alias: `snapcourier-${namespace}-exports`,
    description: `snapcourier ${namespace}: encrypts the ElastiCache exports in ${exp.bucket}`,
    enableKeyRotation: true,
    // Objects encrypted with it may outlive the stack: without the key they are unreadable.
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // (The default policy lets this account administer the key through IAM.)
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheWritesExportsOfThisAccount",
      principals: [new ServicePrincipal(service)],
      // SSE-KMS writes (GenerateDataKey) and multipart uploads of large .rdb files (Decrypt).
      actions: ["kms:Decrypt", "kms:GenerateDataKey"],
      resources: ["*"],
      conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
    }),
  );
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: "DestinationsCopyInReadsExportsViaS3",
      principals: exp.readers.map((a) => new ArnPrincipal(`arn:${p}:iam::${a}:root`)),
      actions: ["kms:Decrypt", "kms:DescribeKey"],
      resources: ["*"],
      conditions: {
        StringEquals: { "kms:ViaService": `s3.${exp.region}.amazonaws.com`, "kms:CallerAccount": exp.readers },
        ArnEquals: { "aws:PrincipalArn": readers },
      },
    }),
  );
  const bucket = new Bucket(scope, "ExportBucket", {
    ...ourBucket(key),
    bucketName: exp.bucket,
    // ACLs disabled (ourBucket): every object is the bucket owner's, whoever wrote it, so the bucket policy
    // alone decides who reads (with ACLs on, objects ElastiCache writes could stay its own).
    // ElastiCache's current User Guide grants the export through the bucket policy below (its
    // service principal; s3:GetBucketAcl still answers with ACLs disabled); the older
    // canonical-ID ACL grant is not needed. Should a region still insist on the ACL grant,
    // BUCKET_OWNER_PREFERRED plus that grant is the fallback.
    // No versioning: snapcourier's source retention deletes expired exports for good.
  });
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheExportsOfThisAccount",
      principals: [new ServicePrincipal(service)],
      actions: ["s3:GetBucketAcl", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      resources: [bucket.bucketArn],
      conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheWritesOurExports",
      principals: [new ServicePrincipal(service)],
      actions: ["s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
      // Export objects are named after the snapshot: <sc-namespace-...>-<shard>.rdb.
      resources: [bucket.arnForObjects(ours)],
      conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "DestinationsCopyInListsOurExports",
      principals: exp.readers.map((a) => new ArnPrincipal(`arn:${p}:iam::${a}:root`)),
      actions: ["s3:ListBucket"],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { "s3:prefix": ours }, ArnEquals: { "aws:PrincipalArn": readers } },
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "DestinationsCopyInReadsOurExports",
      principals: exp.readers.map((a) => new ArnPrincipal(`arn:${p}:iam::${a}:root`)),
      actions: ["s3:GetObject"],
      resources: [bucket.arnForObjects(ours)],
      conditions: { ArnEquals: { "aws:PrincipalArn": readers } },
    }),
  );
  return { key, bucket };
}

/**
 * The copy key's statement that lets ElastiCache of the destination account read the vault's
 * copies when it seeds a cache from them (CreateReplicationGroup with SnapshotArns): S3
 * decrypts each object with the key on ElastiCache's behalf. Only through S3 in the vault's
 * region, only for ElastiCache acting for this account.
 */
export function vaultKeyStatement(account: string, region: string): PolicyStatement {
  return new PolicyStatement({
    sid: "ElastiCacheOfThisAccountDecryptsVaultCopiesViaS3",
    principals: [new ServicePrincipal(elastiCacheExportPrincipal(region))],
    actions: ["kms:Decrypt", "kms:DescribeKey"],
    resources: ["*"],
    conditions: { StringEquals: { "kms:ViaService": `s3.${region}.amazonaws.com`, "aws:SourceAccount": account } },
  });
}

/** What both buckets are: SSE-KMS with `key` (bucket key on), public access blocked, SSL
 * only, ACLs disabled (every object the bucket owner's, so the bucket policy alone decides
 * who reads), retained with the stack like the data in it. */
function ourBucket(key: IKey) {
  return {
    encryption: BucketEncryption.KMS,
    encryptionKey: key,
    bucketKeyEnabled: true,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: RemovalPolicy.RETAIN,
  };
}

/**
 * A destination's vault bucket in the stack's region (exactly `v.bucket`), encrypted with
 * `key` (the region's copy key). Object Lock needs versioning; every copy also carries its
 * own retain-until date (the copy-in step sets it), the default retention covers any other
 * write. Retained with the stack, like the copies in it. ElastiCache of this account may read
 * the `sc-<namespace>-*` copies (seeding a cache from them), and decrypt them through S3 with
 * the key: a key the stack creates gets `vaultKeyStatement` here; for a key the config names,
 * the stack outputs the statement to add to its policy by hand (VaultKeyPolicyStatement...).
 */
export function vaultBucket(scope: Construct, id: string, v: VaultBucket, key: IKey, vault: VaultInputs): Bucket {
  const days = Duration.days(v.lock_days);
  const bucket = new Bucket(scope, id, {
    bucketName: v.bucket,
    versioned: true,
    objectLockEnabled: true,
    objectLockDefaultRetention:
      v.object_lock === "COMPLIANCE" ? ObjectLockRetention.compliance(days) : ObjectLockRetention.governance(days),
    ...ourBucket(key),
    // A copy in parts that no look completes (its export expired, the schedule removed)
    // would keep its parts, and their cost, for good.
    lifecycleRules: [{ id: "AbortStaleCopiesInParts", abortIncompleteMultipartUploadAfter: Duration.days(7) }],
  });
  const stack = Stack.of(scope);
  bucket.addToResourcePolicy(vaultBucketGuardStatement(stack.partition, stack.account, vault, bucket));
  // Seeding a cache from a copy (the User Guide's bucket policy for seeding: the objects, the
  // bucket's listing, its ACL), only for ElastiCache acting for this account. The listing only
  // under our prefix, the objects only ours; nothing that writes or deletes.
  const service = new ServicePrincipal(elastiCacheExportPrincipal(v.region));
  const thisAccount = { StringEquals: { "aws:SourceAccount": stack.account } };
  const ours = `${v.key_prefix}*`;
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheOfThisAccountReadsOurCopies",
      principals: [service],
      actions: ["s3:GetObject"],
      resources: [bucket.arnForObjects(ours)],
      conditions: thisAccount,
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheOfThisAccountListsOurCopies",
      principals: [service],
      actions: ["s3:ListBucket"],
      resources: [bucket.bucketArn],
      conditions: { ...thisAccount, StringLike: { "s3:prefix": ours } },
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: "ElastiCacheOfThisAccountChecksTheVault",
      principals: [service],
      actions: ["s3:GetBucketAcl"],
      resources: [bucket.bucketArn],
      conditions: thisAccount,
    }),
  );
  const keyStatement = vaultKeyStatement(stack.account, v.region);
  if (!key.addToResourcePolicy(keyStatement).statementAdded) {
    // A key the config names: CloudFormation cannot edit its policy.
    new CfnOutput(scope, `VaultKeyPolicyStatement-${v.region}`, {
      description: `Add this statement to the key policy of ${v.kms_key ?? "the vault key"} (the key of vault bucket ${v.bucket}): it lets ElastiCache of this account decrypt the vault's copies through S3 in ${v.region}, to seed a cache from them (the restore drill's caches, a restore by hand).`,
      value: JSON.stringify(keyStatement.toStatementJson()),
    });
  }
  return bucket;
}
