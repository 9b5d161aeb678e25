// What each Lambda step may do, derived from the AWS calls it makes (crates/aws/src: aurora.rs,
// rds.rs, redshift.rs, elasticache.rs, executions.rs, client.rs) and from the engines the config
// schedules. Rules: no wildcard actions; every mutating snapshot action only on ids with our
// prefix (sc-<namespace>-*) and, where the service evaluates tags, only on snapshots carrying
// our namespace tag (create/copy: the request must set it); S3 only on the buckets the stacks
// create, by exact name, and their sc-<namespace>-* objects; KMS only through RDS, Redshift or
// S3 (ElastiCache's exports and vault copies). The restore drill creates and deletes only its
// own sc-<namespace>-dr-* databases and caches.
import { Aws } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { ENGINE_SERVICES, type Engine, type EngineFacts, type ExportBucket, type VaultBucket } from "./config";

export const NAMESPACE_TAG = "snapcourier:namespace";
export const SHARED_WITH_TAG = "snapcourier:shared-with";

export type { Engine } from "./config";
export type Step = "take" | "share" | "copy_in_destination" | "cross_region_copy" | "delete" | "drill";

/** What a destination's restore drill restores (`snapcourier inputs`, its drill's run). */
export interface DrillScope {
  /** The destination regions it restores in. */
  regions: string[];
  /** The engines of the schedules it drills (ElastiCache: from the copies in the vault buckets
   * of these regions, `Scope.vaults`). */
  engines: Set<Engine>;
  /** The Lambda function that judges each restored database, if any. */
  validationFunction?: string;
}

export interface Scope {
  namespace: string;
  engines: Set<Engine>;
  /** Account the functions run in. */
  account: string;
  /** Regions this side acts in (the first is the stack's own region). */
  regions: string[];
  /** The source account and region (destination side: where shared snapshots live). */
  sourceAccount: string;
  sourceRegion: string;
  /** Regions Redshift copies snapshots to, in the source account. */
  redshiftCopyRegions: string[];
  redshiftCopyKey?: string;
  redshiftCopyAutomated: boolean;
  /** Destination side: this account's KMS keys (copy-in key and every region's key). */
  destinationKeys: string[];
  /** The state machine that runs the steps (overlap check). */
  stateMachineName: string;
  /** Destination side, when the config has drills. */
  drill?: DrillScope;
  /** Engines exported through S3 (transport `s3-export` in the engine table): the source's
   * export bucket (`snapcourier inputs`: export_bucket), which the source writes and expires
   * and the destinations read. Absent when no such engine is scheduled. */
  exportBucket?: ExportBucket;
  /** ElastiCache schedules select caches by tag (an opt-in tag): take reads cache tags. */
  cacheTags?: boolean;
  /** Destination side: this account's vault buckets (`snapcourier inputs`: vaults). */
  vaults?: VaultBucket[];
}

const P = Aws.PARTITION;

function arn(service: string, region: string, account: string, resource: string): string {
  return `arn:${P}:${service}:${region}:${account}:${resource}`;
}

function prefix(ns: string): string {
  return `sc-${ns}-*`;
}

/** The databases a restore drill creates and deletes: sc-<namespace>-dr-* (crates/core/src/drill.rs). */
export function drillPrefix(ns: string): string {
  return `sc-${ns}-dr-*`;
}

/** Read-only listing calls: these APIs take no resource ARN when they list, so "*" limited
 * to the regions this side acts in. */
function describe(actions: string[], regions: string[]): PolicyStatement {
  return new PolicyStatement({
    sid: "DescribeOnly",
    actions: actions.sort(),
    resources: ["*"],
    conditions: { StringEquals: { "aws:RequestedRegion": regions } },
  });
}

function statement(
  sid: string,
  actions: string[],
  resources: string[],
  conditions?: Record<string, Record<string, unknown>>,
): PolicyStatement {
  return new PolicyStatement({ sid, effect: Effect.ALLOW, actions, resources, conditions });
}

const requestTag = (ns: string) => ({
  StringEquals: { [`aws:RequestTag/${NAMESPACE_TAG}`]: ns },
});

function rdsClusterSnapshots(s: Scope, regions: string[], account: string): string[] {
  return regions.map((r) => arn("rds", r, account, `cluster-snapshot:${prefix(s.namespace)}`));
}
function rdsSnapshots(s: Scope, regions: string[], account: string): string[] {
  return regions.map((r) => arn("rds", r, account, `snapshot:${prefix(s.namespace)}`));
}
function redshiftSnapshots(s: Scope, regions: string[]): string[] {
  // Redshift snapshot ARNs are snapshot:<cluster>/<snapshot id>.
  return regions.map((r) => arn("redshift", r, s.account, `snapshot:*/${prefix(s.namespace)}`));
}
const rdsOwned = (kind: "cluster-snapshot" | "snapshot", ns: string) => ({
  StringEquals: { [`rds:${kind}-tag/${NAMESPACE_TAG}`]: ns },
});
const redshiftOwned = (ns: string) => ({
  StringEquals: { [`aws:ResourceTag/${NAMESPACE_TAG}`]: ns },
});

/**
 * Use of KMS keys only by RDS/Redshift on our behalf: grants only for AWS resources, and the
 * key's metadata, which the service reads first. Two statements, because KMS sets
 * kms:GrantIsForAWSResource on grant operations only: joined with it, DescribeKey would
 * never be allowed (test/kms.test.ts checks each call under the context AWS sets).
 */
function kmsViaService(
  sid: string,
  keys: string[],
  services: string[],
  only: Record<string, Record<string, unknown>> = {},
): PolicyStatement[] {
  return [
    statement(`${sid}Grants`, ["kms:CreateGrant"], keys, {
      StringEquals: { "kms:ViaService": services },
      Bool: { "kms:GrantIsForAWSResource": "true" },
      ...only,
    }),
    statement(`${sid}Metadata`, ["kms:DescribeKey"], keys, {
      StringEquals: { "kms:ViaService": services },
      ...only,
    }),
  ];
}

/** kms:DescribeKey on the source account's keys in its region: no grant, no use of the key. */
function readKeyMetadata(s: Scope): PolicyStatement {
  return statement("ReadKeyMetadata", ["kms:DescribeKey"], [arn("kms", s.sourceRegion, s.account, "key/*")]);
}

const ALIAS_ARN = /^arn:([a-z-]+):kms:([a-z0-9-]+):(\d{12}):alias\/(.+)$/;

/** Keys named by alias ARN, grouped: "the keys of this account and region" (key/*) -> the
 * aliases they must carry (kms:ResourceAliases). */
function aliasedKeys(keys: string[]): Map<string, Set<string>> {
  const aliased = new Map<string, Set<string>>();
  for (const k of keys) {
    const m = ALIAS_ARN.exec(k);
    if (!m) continue;
    const [, , region, account, alias] = m;
    const keyArns = arn("kms", region!, account!, "key/*");
    aliased.set(keyArns, (aliased.get(keyArns) ?? new Set()).add(`alias/${alias}`));
  }
  return aliased;
}

/**
 * kmsViaService for keys named by key ARN or alias ARN. IAM matches a key's ARN, never an
 * alias, so an alias becomes "the keys of that account and region carrying this alias"
 * (kms:ResourceAliases): the stack-created keys are known only by alias here, since they
 * live in other regions' stacks.
 */
function kmsKeysViaService(sid: string, keys: string[], services: string[]): PolicyStatement[] {
  const byArn = keys.filter((k) => !ALIAS_ARN.test(k));
  const out: PolicyStatement[] = byArn.length > 0 ? kmsViaService(sid, byArn, services) : [];
  const aliased = aliasedKeys(keys);
  let n = 0;
  for (const [keyArns, aliases] of aliased) {
    out.push(
      ...kmsViaService(`${sid}ByAlias${n}`, [keyArns], services, {
        "ForAnyValue:StringEquals": { "kms:ResourceAliases": [...aliases].sort() },
      }),
    );
    n += 1;
  }
  return out;
}

/**
 * What RDS needs of a key to restore a copy it encrypts: grants for the restored database
 * (only for AWS resources) and, in a statement without kms:GrantIsForAWSResource (KMS sets it
 * on grant operations only), the key's metadata and its data keys, all only through RDS in
 * the given regions. Keys by ARN, or by alias as in kmsKeysViaService.
 */
function kmsRestoreViaRds(sid: string, keys: string[], regions: string[]): PolicyStatement[] {
  const services = { "kms:ViaService": regions.map((r) => `rds.${r}.amazonaws.com`) };
  const pair = (suffix: string, arns: string[], only: Record<string, Record<string, unknown>>): PolicyStatement[] => [
    statement(`${sid}${suffix}Grants`, ["kms:CreateGrant"], arns, {
      StringEquals: services,
      Bool: { "kms:GrantIsForAWSResource": "true" },
      ...only,
    }),
    // GenerateDataKey and its WithoutPlaintext form by name: the app grants no wildcard action
    // (and RDS never asks for a key pair).
    statement(
      `${sid}${suffix}Use`,
      ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"],
      arns,
      { StringEquals: services, ...only },
    ),
  ];
  const byArn = keys.filter((k) => !ALIAS_ARN.test(k));
  const out = byArn.length > 0 ? pair("", byArn, {}) : [];
  const aliased = aliasedKeys(keys);
  let n = 0;
  for (const [keyArns, aliases] of aliased) {
    out.push(...pair(`ByAlias${n}`, [keyArns], { "ForAnyValue:StringEquals": { "kms:ResourceAliases": [...aliases].sort() } }));
    n += 1;
  }
  return out;
}

/** The region of a key or alias ARN. */
const regionOf = (keyArn: string): string => keyArn.split(":")[3] ?? "";

/**
 * The restore drill: find the newest copies and what earlier drills left, restore into
 * sc-<ns>-dr-* databases (tagged ours at creation; ElastiCache: replication groups seeded from
 * the vault's copies, drillCacheStatements), follow and delete them, skipping final snapshots
 * (no snapshot action at all: the copies are only read, as restore sources), keep
 * one record per region/schedule/database under /snapcourier/<ns>/destination/drills/ in the
 * stack's region, and ask the validation function for a verdict.
 */
function drillStatements(s: Scope, out: PolicyStatement[], reads: string[]): void {
  const d = s.drill;
  if (!d) return;
  const ns = s.namespace;
  const aurora = d.engines.has("aurora");
  const rds = d.engines.has("rds");
  const redshift = d.engines.has("redshift");
  const inRegions = (service: string, account: string, resource: string) =>
    d.regions.map((r) => arn(service, r, account, resource));
  const dr = drillPrefix(ns);
  const clusters = inRegions("rds", s.account, `cluster:${dr}`);
  const instances = inRegions("rds", s.account, `db:${dr}`);
  // What RDS also authorizes a restore or a new instance on: the subnet, option and parameter
  // groups the restored database gets (the config's network, else the defaults).
  const groups = (...kinds: string[]) => kinds.flatMap((k) => inRegions("rds", s.account, `${k}:*`));
  if (aurora) {
    reads.push("rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusters", "rds:DescribeDBInstances");
    out.push(
      statement(
        "RestoreDrillClusters",
        ["rds:RestoreDBClusterFromSnapshot"],
        [...clusters, ...inRegions("rds", s.account, `cluster-snapshot:${prefix(ns)}`), ...groups("cluster-pg", "og", "subgrp")],
        requestTag(ns),
      ),
      // The one instance a restored cluster needs (the restore makes the cluster only).
      statement(
        "AddDrillClusterInstances",
        ["rds:CreateDBInstance"],
        [...instances, ...clusters, ...groups("og", "pg", "subgrp")],
        requestTag(ns),
      ),
    );
  }
  if (rds) {
    reads.push("rds:DescribeDBInstances", "rds:DescribeDBSnapshots");
    out.push(
      statement(
        "RestoreDrillInstances",
        ["rds:RestoreDBInstanceFromDBSnapshot"],
        [...instances, ...inRegions("rds", s.account, `snapshot:${prefix(ns)}`), ...groups("og", "pg", "subgrp")],
        requestTag(ns),
      ),
    );
  }
  if (aurora || rds) {
    const restored = [...(aurora ? clusters : []), ...instances];
    out.push(
      // Tags on create only (the restore's and CreateDBInstance's own Tags), never on a copy.
      statement("TagDrillDatabasesAtCreation", ["rds:AddTagsToResource"], restored, requestTag(ns)),
      // No final snapshot: the drill skips it, and rds:CreateDB(Cluster)Snapshot is not granted.
      statement(
        "DeleteDrillDatabases",
        [...(aurora ? ["rds:DeleteDBCluster"] : []), "rds:DeleteDBInstance"],
        restored,
        { StringEquals: { [`aws:ResourceTag/${NAMESPACE_TAG}`]: ns } },
      ),
      // Restoring an encrypted copy: RDS uses the copy's key, this account's key of the region.
      ...kmsRestoreViaRds(
        "DrillKeysViaRds",
        s.destinationKeys.filter((k) => d.regions.includes(regionOf(k))),
        d.regions,
      ),
    );
  }
  if (redshift) {
    reads.push("redshift:DescribeClusterSnapshots", "redshift:DescribeClusters");
    const redshiftClusters = inRegions("redshift", s.account, `cluster:${dr}`);
    out.push(
      statement(
        "RestoreDrillRedshiftClusters",
        ["redshift:RestoreFromClusterSnapshot"],
        // Redshift copies stay in the source account: the drill restores its shares.
        [...redshiftClusters, ...inRegions("redshift", s.sourceAccount, `snapshot:*/${prefix(ns)}`)],
      ),
      // Redshift's restore takes no tags: the drill tags the restored cluster at once.
      statement("TagDrillRedshiftClusters", ["redshift:CreateTags"], redshiftClusters, requestTag(ns)),
      // By name only: a cluster whose tagging failed is still the drill's to delete.
      statement("DeleteDrillRedshiftClusters", ["redshift:DeleteCluster"], redshiftClusters),
    );
  }
  if (d.engines.has("elasticache")) drillCacheStatements(s, d, out, reads);
  out.push(
    statement(
      "KeepDrillRecords",
      ["ssm:GetParametersByPath", "ssm:PutParameter"],
      [arn("ssm", s.regions[0] ?? s.sourceRegion, s.account, `parameter/snapcourier/${ns}/destination/drills/*`)],
    ),
  );
  if (d.validationFunction) {
    out.push(statement("InvokeValidationFunction", ["lambda:InvokeFunction"], [d.validationFunction]));
  }
}

/**
 * The restore drill of ElastiCache schedules (crates/aws/src/elasticache.rs), in each drill
 * region: find the newest export manifest in the region's vault bucket (a listing by the
 * schedule's prefix, then the manifest, SSE-KMS with the region's copy key), seed an
 * sc-<ns>-dr-* replication group from the copy's .rdb objects (SnapshotArns, tagged ours at
 * creation), follow it and delete it without a final snapshot (no elasticache:CreateSnapshot
 * is granted). The vault's objects are only read: no S3 write or delete. ElastiCache reads the
 * .rdb objects itself, as its service principal: the vault bucket's and copy key's policies let
 * it (buckets.ts, vaultBucket).
 */
function drillCacheStatements(s: Scope, d: DrillScope, out: PolicyStatement[], reads: string[]): void {
  const ns = s.namespace;
  const vaults = (s.vaults ?? []).filter((v) => d.regions.includes(v.region));
  const missing = d.regions.filter((r) => !vaults.some((v) => v.region === r));
  if (missing.length > 0) {
    throw new Error(
      `the restore drill drills ElastiCache in ${missing.join(", ")}, but \`snapcourier inputs\` printed no vault bucket there: build the snapcourier binary and the CDK app from one checkout`,
    );
  }
  const caches = (kind: string, name: string) => d.regions.map((r) => arn("elasticache", r, s.account, `${kind}:${name}`));
  const dr = drillPrefix(ns);
  // A replication group's member clusters (nodes) are named <group id>-0001-001 and so on.
  const restored = [...caches("replicationgroup", dr), ...caches("cluster", dr)];
  reads.push("elasticache:DescribeReplicationGroups");
  out.push(
    // The manifests (<id>.manifest-<ts>.json) by the schedule's prefix, and the manifest read.
    statement("ListDrillVaultCopies", ["s3:ListBucket"], vaults.map((v) => bucketArn(v.bucket)), listsOurPrefix(ns)),
    statement("ReadDrillVaultCopies", ["s3:GetObject"], vaults.map((v) => ourObjects(v.bucket, ns))),
    ...kmsViaS3(
      "DecryptDrillVaultCopiesViaS3",
      ["kms:Decrypt"],
      vaults.flatMap((v) => (v.kms_key ? [v.kms_key] : [])),
      vaults.map((v) => v.region),
    ),
    // CreateReplicationGroup is authorized on the new group and its clusters, and on the
    // parameter and cache subnet groups it gets (the engine's default.* or the config's drill
    // network); no user group, cache security group or ElastiCache snapshot is named.
    statement(
      "SeedDrillCaches",
      ["elasticache:CreateReplicationGroup"],
      [...restored, ...caches("parametergroup", "*"), ...caches("subnetgroup", "*")],
      requestTag(ns),
    ),
    // The create's own Tags, on the group and the clusters it replicates them to.
    statement("TagDrillCachesAtCreation", ["elasticache:AddTagsToResource"], restored, requestTag(ns)),
    // By name, like a Redshift drill cluster: a group named ours is the drill's to delete.
    statement("DeleteDrillCaches", ["elasticache:DeleteReplicationGroup"], caches("replicationgroup", dr)),
    // The first ElastiCache resource of an account creates ElastiCache's service-linked role.
    statement(
      "CreateElastiCacheServiceLinkedRole",
      ["iam:CreateServiceLinkedRole"],
      [`arn:${P}:iam::${s.account}:role/aws-service-role/elasticache.amazonaws.com/AWSServiceRoleForElastiCache`],
      { StringEquals: { "iam:AWSServiceName": "elasticache.amazonaws.com" } },
    ),
  );
}

/** Our ElastiCache snapshots of both kinds (replication groups', serverless caches'). */
function cacheSnapshots(s: Scope): string[] {
  return [
    arn("elasticache", s.sourceRegion, s.account, `snapshot:${prefix(s.namespace)}`),
    arn("elasticache", s.sourceRegion, s.account, `serverlesscachesnapshot:${prefix(s.namespace)}`),
  ];
}

const bucketArn = (name: string) => `arn:${P}:s3:::${name}`;
/** The objects snapcourier writes and expires in a bucket: sc-<namespace>-*. */
const ourObjects = (name: string, ns: string) => `arn:${P}:s3:::${name}/${prefix(ns)}`;
/** A listing under our prefix only (every listing the steps make is by a schedule's prefix). */
const listsOurPrefix = (ns: string) => ({ StringLike: { "s3:prefix": prefix(ns) } });

/**
 * KMS use (`actions`) of keys named by key ARN or alias ARN, only through S3 in `regions`
 * (SSE-KMS on a bucket's objects). Aliases as in kmsKeysViaService: the keys of that account
 * and region carrying the alias.
 */
function kmsViaS3(sid: string, actions: string[], keys: string[], regions: string[]): PolicyStatement[] {
  const via = { "kms:ViaService": [...new Set(regions)].map((r) => `s3.${r}.amazonaws.com`) };
  const byArn = keys.filter((k) => !ALIAS_ARN.test(k));
  const out = byArn.length > 0 ? [statement(sid, actions, [...new Set(byArn)], { StringEquals: via })] : [];
  let n = 0;
  for (const [keyArns, aliases] of aliasedKeys(keys)) {
    out.push(
      statement(`${sid}ByAlias${n}`, actions, [keyArns], {
        StringEquals: via,
        "ForAnyValue:StringEquals": { "kms:ResourceAliases": [...aliases].sort() },
      }),
    );
    n += 1;
  }
  return out;
}

/**
 * ElastiCache on the source side (crates/aws/src/elasticache.rs, steps/elasticache.rs): take
 * snapshots of the covered replication groups and serverless caches (tagged ours at
 * creation), export the available ones to the export bucket, expire them and their objects.
 * ElastiCache lists no tags inline: share and delete read a snapshot's tags before they act.
 */
function cacheSourceStatements(step: Step, s: Scope, out: PolicyStatement[], reads: string[]): void {
  const ns = s.namespace;
  const snapshots = cacheSnapshots(s);
  const [replicationGroupSnapshots, serverlessSnapshots] = snapshots as [string, string];
  const caches = (kind: string) => arn("elasticache", s.sourceRegion, s.account, `${kind}:*`);
  reads.push("elasticache:DescribeServerlessCacheSnapshots", "elasticache:DescribeSnapshots");
  switch (step) {
    case "take":
      reads.push("elasticache:DescribeReplicationGroups", "elasticache:DescribeServerlessCaches");
      out.push(
        // The caches are chosen at run time by the schedule's patterns. A replication group's
        // snapshot is authorized on the group, its clusters (nodes) and the new snapshot.
        statement(
          "CreateOwnCacheSnapshots",
          ["elasticache:CreateSnapshot"],
          [caches("replicationgroup"), caches("cluster"), replicationGroupSnapshots],
          requestTag(ns),
        ),
        statement(
          "CreateOwnServerlessCacheSnapshots",
          ["elasticache:CreateServerlessCacheSnapshot"],
          [caches("serverlesscache"), serverlessSnapshots],
          requestTag(ns),
        ),
        // Tags passed to a create are authorized as AddTagsToResource on the new snapshot.
        statement("TagOwnCacheSnapshotsAtCreation", ["elasticache:AddTagsToResource"], snapshots, requestTag(ns)),
      );
      if (s.cacheTags) {
        // A schedule with an opt-in tag: each cache's tags (ElastiCache lists none inline).
        out.push(
          statement("ReadCacheTags", ["elasticache:ListTagsForResource"], [caches("replicationgroup"), caches("serverlesscache")]),
        );
      }
      break;
    case "share":
      out.push(
        statement("ReadOwnCacheSnapshotTags", ["elasticache:ListTagsForResource"], snapshots),
        // No tag condition: the step reads the snapshot's tags first and exports only ours,
        // and an export's target (objects named like the snapshot) is no tagged resource.
        statement(
          "ExportOwnCacheSnapshots",
          ["elasticache:CopySnapshot", "elasticache:ExportServerlessCacheSnapshot"],
          snapshots,
        ),
      );
      if (s.exportBucket) {
        // What ElastiCache checks of the caller on the target bucket (its own writes are
        // allowed by the bucket policy to its service principal).
        out.push(
          statement("ExportIntoTheExportBucket", ["s3:GetBucketAcl", "s3:GetBucketLocation"], [bucketArn(s.exportBucket.bucket)]),
          statement("ExportObjectsIntoTheExportBucket", ["s3:PutObject"], [ourObjects(s.exportBucket.bucket, ns)]),
        );
      }
      break;
    case "delete":
      out.push(
        statement("ReadOwnCacheSnapshotTags", ["elasticache:ListTagsForResource"], snapshots),
        statement(
          "DeleteOwnCacheSnapshots",
          ["elasticache:DeleteServerlessCacheSnapshot", "elasticache:DeleteSnapshot"],
          snapshots,
          { StringEquals: { [`aws:ResourceTag/${NAMESPACE_TAG}`]: ns } },
        ),
      );
      if (s.exportBucket) {
        // An expired snapshot's objects go first (the bucket is not versioned).
        out.push(statement("DeleteOwnExports", ["s3:DeleteObject"], [ourObjects(s.exportBucket.bucket, ns)]));
      }
      break;
    default:
      break;
  }
  if (s.exportBucket) {
    // Each step lists the schedule's exports (by the schedule's id prefix).
    out.push(statement("ListOwnExports", ["s3:ListBucket"], [bucketArn(s.exportBucket.bucket)], listsOurPrefix(ns)));
  }
}

/**
 * Exports on the destination side: copy-in reads the source's exports (cross-account, in the
 * source region, decrypted by S3 with the source's export key) and copies each object into
 * every vault bucket (SSE-KMS with that region's key, Object Lock retention on the copy),
 * then reads the copy back to compare checksums; delete removes expired copies' versions,
 * which Object Lock refuses inside the retention. Never s3:BypassGovernanceRetention.
 */
function vaultStatements(step: Step, s: Scope, out: PolicyStatement[]): void {
  const ns = s.namespace;
  const vaults = s.vaults ?? [];
  if (vaults.length === 0) return;
  const buckets = vaults.map((v) => bucketArn(v.bucket));
  const objects = vaults.map((v) => ourObjects(v.bucket, ns));
  const listVaults = statement("ListVaultVersions", ["s3:ListBucketVersions"], buckets, listsOurPrefix(ns));
  if (step === "copy_in_destination" && s.exportBucket) {
    out.push(
      statement("ListSourceExports", ["s3:ListBucket"], [bucketArn(s.exportBucket.bucket)], listsOurPrefix(ns)),
      statement("ReadSourceExports", ["s3:GetObject"], [ourObjects(s.exportBucket.bucket, ns)]),
      // The export key is the source stack's (alias/snapcourier-<ns>-exports); its policy lets
      // only this role decrypt, only through S3 in the source region.
      statement("DecryptSourceExportsViaS3", ["kms:Decrypt"], [arn("kms", s.exportBucket.region, s.sourceAccount, "key/*")], {
        StringEquals: { "kms:ViaService": `s3.${s.exportBucket.region}.amazonaws.com` },
      }),
      listVaults,
      // CopyObject with Object Lock headers needs s3:PutObjectRetention; HeadObject, GetObject.
      // A shard over 5 GiB is copied in parts (Create/UploadPartCopy/Complete are
      // s3:PutObject), resumed from its parts (ListParts) or aborted when S3 refuses its
      // checksum.
      statement("CopyIntoVaults", [
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
      ], objects),
      statement("FindVaultCopiesInParts", ["s3:ListBucketMultipartUploads"], buckets),
      // Completing a copy in parts reads its SSE-KMS parts back: kms:Decrypt too.
      ...kmsViaS3(
        "EncryptVaultCopiesViaS3",
        ["kms:GenerateDataKey", "kms:Decrypt"],
        vaults.flatMap((v) => (v.kms_key ? [v.kms_key] : [])),
        vaults.map((v) => v.region),
      ),
    );
  }
  if (step === "delete") {
    out.push(listVaults, statement("DeleteExpiredVaultCopies", ["s3:DeleteObjectVersion"], objects));
  }
}

function overlapCheck(s: Scope): PolicyStatement[] {
  return [
    statement("ListOwnExecutions", ["states:ListExecutions"], [
      arn("states", s.regions[0] ?? s.sourceRegion, s.account, `stateMachine:${s.stateMachineName}`),
    ]),
    statement("DescribeOwnExecutions", ["states:DescribeExecution"], [
      arn("states", s.regions[0] ?? s.sourceRegion, s.account, `execution:${s.stateMachineName}:*`),
    ]),
  ];
}

/**
 * The engine table says which actions of its services (rds, redshift, elasticache, s3) each
 * step needs, next to the code that calls them (crates/core/src/engine.rs, held to the code by
 * crates/aws/tests/iam_table.rs). A role granting any other action of those services is a
 * mistake in these statements: synth stops, naming it.
 */
export function checkEngineActions(step: Step, engines: Set<Engine>, table: EngineFacts[], statements: PolicyStatement[]): void {
  const rows = table.filter((e) => engines.has(e.engine));
  if (rows.some((e) => e.iam === undefined)) {
    throw new Error("`snapcourier inputs` printed an engine table without IAM actions: build the snapcourier binary and the CDK app from one checkout");
  }
  const allowed = new Set(rows.flatMap((e) => e.iam[step]));
  const service = new RegExp(`^(${ENGINE_SERVICES.join("|")}):`);
  const beyond = statements
    .flatMap((st) => st.toStatementJson() as { Sid?: string; Action?: string | string[] })
    .flatMap((st) => (Array.isArray(st.Action) ? st.Action : st.Action ? [st.Action] : []).map((a) => [st.Sid, a] as const))
    .filter(([, a]) => service.test(a) && !allowed.has(a));
  if (beyond.length > 0) {
    throw new Error(
      `the ${step} role would grant ${beyond.map(([sid, a]) => `${a} (${sid})`).join(", ")}, which the engine table does not list for this step and engines (${[...engines].join(", ")}): add it to EngineFacts.iam in crates/core/src/engine.rs if the step calls it, else remove the grant`,
    );
  }
}

/** The statements of one step's role (log writing is granted separately). */
export function statementsFor(step: Step, s: Scope): PolicyStatement[] {
  const ns = s.namespace;
  const home = [s.sourceRegion];
  const out: PolicyStatement[] = [];
  const reads: string[] = [];
  const aurora = s.engines.has("aurora");
  const rds = s.engines.has("rds");
  const redshift = s.engines.has("redshift");
  const redshiftRegions = [s.sourceRegion, ...s.redshiftCopyRegions];
  switch (step) {
    case "take": {
      out.push(...overlapCheck(s));
      if (aurora || rds) {
        // Only to see whether a database's key is the AWS managed aws/rds key: its snapshots
        // could never be shared, so none is taken.
        out.push(readKeyMetadata(s));
      }
      if (aurora) {
        reads.push("rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots");
        out.push(
          statement(
            "CreateOwnClusterSnapshots",
            ["rds:CreateDBClusterSnapshot"],
            [arn("rds", s.sourceRegion, s.account, "cluster:*"), ...rdsClusterSnapshots(s, home, s.account)],
            requestTag(ns),
          ),
        );
      }
      if (rds) {
        reads.push("rds:DescribeDBInstances", "rds:DescribeDBSnapshots");
        out.push(
          statement(
            "CreateOwnInstanceSnapshots",
            ["rds:CreateDBSnapshot"],
            [arn("rds", s.sourceRegion, s.account, "db:*"), ...rdsSnapshots(s, home, s.account)],
            requestTag(ns),
          ),
        );
      }
      if (aurora || rds) {
        out.push(
          statement(
            "TagOwnSnapshotsAtCreation",
            ["rds:AddTagsToResource"],
            [
              ...(aurora ? rdsClusterSnapshots(s, home, s.account) : []),
              ...(rds ? rdsSnapshots(s, home, s.account) : []),
            ],
            requestTag(ns),
          ),
        );
      }
      if (redshift) {
        reads.push("redshift:DescribeClusters", "redshift:DescribeClusterSnapshots");
        out.push(
          statement(
            "CreateOwnRedshiftSnapshots",
            ["redshift:CreateClusterSnapshot", "redshift:CreateTags"],
            [arn("redshift", s.sourceRegion, s.account, "cluster:*"), ...redshiftSnapshots(s, home)],
            requestTag(ns),
          ),
        );
        if (s.redshiftCopyAutomated) {
          out.push(
            statement(
              "CopyAutomatedToOwnRedshiftSnapshots",
              ["redshift:CopyClusterSnapshot"],
              [arn("redshift", s.sourceRegion, s.account, "snapshot:*/rs:*"), ...redshiftSnapshots(s, home)],
            ),
          );
        }
        if (s.redshiftCopyRegions.length > 0) {
          reads.push("redshift:DescribeSnapshotCopyGrants");
          out.push(
            statement(
              "EnableCrossRegionSnapshotCopy",
              ["redshift:EnableSnapshotCopy"],
              [arn("redshift", s.sourceRegion, s.account, "cluster:*")],
            ),
          );
          if (s.redshiftCopyKey) {
            out.push(
              statement(
                "CreateOwnCopyGrant",
                ["redshift:CreateSnapshotCopyGrant"],
                s.redshiftCopyRegions.map((r) =>
                  arn("redshift", r, s.account, `snapshotcopygrant:snapcourier-${ns}`),
                ),
              ),
              ...kmsViaService(
                "CopyGrantKeyViaRedshift",
                [s.redshiftCopyKey],
                s.redshiftCopyRegions.map((r) => `redshift.${r}.amazonaws.com`),
              ),
            );
          }
        }
      }
      break;
    }
    case "share": {
      if (aurora || rds) {
        // Only to see whether the snapshot's key is the AWS managed aws/rds key (unshareable).
        out.push(readKeyMetadata(s));
      }
      if (aurora) {
        reads.push("rds:DescribeDBClusterSnapshots");
        out.push(
          statement(
            "ShareOwnClusterSnapshots",
            // No Describe*Attributes: sharing with an account that has access is a no-op for
            // AWS, so the step never reads the attribute first.
            ["rds:AddTagsToResource", "rds:ModifyDBClusterSnapshotAttribute"],
            rdsClusterSnapshots(s, home, s.account),
            rdsOwned("cluster-snapshot", ns),
          ),
        );
      }
      if (rds) {
        reads.push("rds:DescribeDBSnapshots");
        out.push(
          statement(
            "ShareOwnInstanceSnapshots",
            ["rds:AddTagsToResource", "rds:ModifyDBSnapshotAttribute"],
            rdsSnapshots(s, home, s.account),
            rdsOwned("snapshot", ns),
          ),
        );
      }
      if (redshift) {
        reads.push("redshift:DescribeClusterSnapshots");
        out.push(
          statement(
            "ShareOwnRedshiftSnapshots",
            ["redshift:AuthorizeSnapshotAccess", "redshift:CreateTags"],
            redshiftSnapshots(s, redshiftRegions),
            redshiftOwned(ns),
          ),
        );
        if (s.redshiftCopyRegions.length > 0) {
          // Redshift's own cross-region copy arrives untagged: the share step tags it ours
          // (steps/redshift.rs), so here the request, not the resource, carries the tag.
          out.push(
            statement(
              "TagRedshiftCopiesOurs",
              ["redshift:CreateTags"],
              redshiftSnapshots(s, s.redshiftCopyRegions),
              requestTag(ns),
            ),
          );
        }
      }
      break;
    }
    case "copy_in_destination":
    case "cross_region_copy": {
      const copyIn = step === "copy_in_destination";
      if (copyIn) out.push(...overlapCheck(s));
      const targets = copyIn ? home : s.regions;
      if (aurora) {
        reads.push("rds:DescribeDBClusterSnapshots");
        out.push(
          statement(
            "CopyIntoOwnClusterSnapshots",
            ["rds:AddTagsToResource", "rds:CopyDBClusterSnapshot"],
            [
              // the source: shared by the source account, or our own intermediate copy
              ...(copyIn
                ? rdsClusterSnapshots(s, home, s.sourceAccount)
                : rdsClusterSnapshots(s, home, s.account)),
              ...rdsClusterSnapshots(s, targets, s.account),
            ],
            requestTag(ns),
          ),
        );
      }
      if (rds) {
        reads.push("rds:DescribeDBSnapshots");
        out.push(
          statement(
            "CopyIntoOwnInstanceSnapshots",
            ["rds:AddTagsToResource", "rds:CopyDBSnapshot"],
            [
              ...(copyIn ? rdsSnapshots(s, home, s.sourceAccount) : rdsSnapshots(s, home, s.account)),
              ...rdsSnapshots(s, targets, s.account),
              // the option group a copy gets in its region (mapped in the config)
              ...targets.map((r) => arn("rds", r, s.account, "og:*")),
            ],
            requestTag(ns),
          ),
        );
      }
      if (aurora || rds) {
        const keys = copyIn
          ? [...s.destinationKeys, arn("kms", s.sourceRegion, s.sourceAccount, "key/*")]
          : s.destinationKeys;
        out.push(
          ...kmsKeysViaService(
            "CopyKeysViaRds",
            keys,
            s.regions.map((r) => `rds.${r}.amazonaws.com`),
          ),
        );
      }
      if (redshift) {
        // Redshift copies stay in the source account; this side verifies the shares.
        reads.push("redshift:DescribeClusterSnapshots");
      }
      break;
    }
    case "delete": {
      const regions = s.account === s.sourceAccount ? home : s.regions;
      if (aurora) {
        reads.push("rds:DescribeDBClusterSnapshots");
        out.push(
          statement(
            "DeleteOwnClusterSnapshots",
            ["rds:DeleteDBClusterSnapshot"],
            rdsClusterSnapshots(s, regions, s.account),
            rdsOwned("cluster-snapshot", ns),
          ),
        );
      }
      if (rds) {
        reads.push("rds:DescribeDBSnapshots");
        out.push(
          statement(
            "DeleteOwnInstanceSnapshots",
            ["rds:DeleteDBSnapshot"],
            rdsSnapshots(s, regions, s.account),
            rdsOwned("snapshot", ns),
          ),
        );
      }
      if (redshift && s.account === s.sourceAccount) {
        reads.push("redshift:DescribeClusterSnapshots");
        out.push(
          statement(
            "DeleteOwnRedshiftSnapshots",
            ["redshift:DeleteClusterSnapshot", "redshift:RevokeSnapshotAccess"],
            redshiftSnapshots(s, redshiftRegions),
            redshiftOwned(ns),
          ),
        );
      }
      break;
    }
    case "drill": {
      drillStatements(s, out, reads);
      break;
    }
  }
  // Exports through S3 (ElastiCache): the source's snapshots and export bucket, the
  // destination's vault buckets.
  if (s.account === s.sourceAccount) {
    if (s.engines.has("elasticache")) cacheSourceStatements(step, s, out, reads);
  } else {
    vaultStatements(step, s, out);
  }
  if (reads.length > 0) {
    // Source side: the source region (and Redshift's copy regions); destination: every region
    // (the drill: its regions).
    const regions =
      step === "drill" && s.drill
        ? s.drill.regions
        : s.account === s.sourceAccount
          ? redshift
            ? redshiftRegions
            : home
          : s.regions;
    out.unshift(describe([...new Set(reads)], [...new Set(regions)]));
  }
  return out;
}
