// cdk-nag AwsSolutions findings this app accepts, each with the reason a security reviewer
// needs. Only findings matching a row below (rule finding + construct) are acknowledged, on
// the construct that raised them; anything new stays a violation and fails the tests.
import { type Stack, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";

export interface Acceptance {
  finding: RegExp;
  construct: RegExp;
  reason: string;
}

const STEP_ROLE = /\/(Take|Share|Delete|CopyInDestination|CrossRegionCopy)Role\/DefaultPolicy\/Resource$/;
/** The destination's restore drill step (its findings have reasons of their own). */
const DRILL_ROLE = /\/DrillRole\/DefaultPolicy\/Resource$/;
/** The main state machine's role, and the drill state machine's. */
const MACHINE_ROLE = /\/(Drill)?StateMachineRole\/DefaultPolicy\/Resource$/;

export const ACCEPTED: Acceptance[] = [
  {
    finding: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    construct: STEP_ROLE,
    reason:
      "Read-only Describe calls only (rds:Describe*, redshift:Describe*, elasticache:Describe*, as listed): listing snapshots, clusters, instances, replication groups and serverless caches is authorized against '*' because the call names no resource. The statement holds no mutating action and is limited by aws:RequestedRegion to this deployment's regions; every mutating action is in other statements scoped to our snapshot prefix and namespace tag.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    construct: MACHINE_ROLE,
    reason:
      "Added by CDK for X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and CloudWatch Logs vended delivery (logs:CreateLogDelivery etc.): these actions do not support resource-level permissions and reach no customer data.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::<[A-Za-z0-9]+\.Arn>:\*\]$/,
    construct: MACHINE_ROLE,
    reason:
      "lambda:InvokeFunction on this stack's own step functions only; the wildcard is the version/alias qualifier of that fixed function ARN (CDK grantInvoke).",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:states:[a-z0-9-]+:\d{12}:execution:snapcourier-[a-z0-9]+-(source|destination):\*\]$/,
    construct: STEP_ROLE,
    reason:
      "states:DescribeExecution on executions of this stack's own state machine (execution names are generated per run): the overlap check that makes a second concurrent execution of a schedule do nothing.",
  },
  {
    finding:
      /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:(rds:[a-z0-9-]+:\d{12}:(cluster-snapshot|snapshot):sc-[a-z0-9]+-\*|redshift:[a-z0-9-]+:\d{12}:snapshot:\*\/sc-[a-z0-9]+-\*)\]$/,
    construct: STEP_ROLE,
    reason:
      "snapcourier's own snapshot id prefix sc-<namespace>-*: ids are generated per interval slot, so the prefix is the narrowest name IAM can express. Every mutation is further conditioned on the snapcourier:namespace tag (the resource's tag, or at creation and copy the request's tag).",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:elasticache:[a-z0-9-]+:\d{12}:(snapshot|serverlesscachesnapshot):sc-[a-z0-9]+-\*\]$/,
    construct: STEP_ROLE,
    reason:
      "ElastiCache snapshots of snapcourier's own id prefix sc-<namespace>-* (ids are generated per interval slot, so the prefix is the narrowest name IAM can express): created only with our namespace tag in the request, deleted only when they carry it (aws:ResourceTag); their tags read, and exported to the stack's own export bucket, only after the step has read the tags and found them ours (the export's target is no tagged resource).",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:elasticache:[a-z0-9-]+:\d{12}:(replicationgroup|cluster|serverlesscache):\*\]$/,
    construct: STEP_ROLE,
    reason:
      "The caches to snapshot are chosen at run time by the schedule's include/exclude regular expressions, which IAM cannot express. Only in this account and region, only to create a snapshot (which must carry our namespace tag) and, for a schedule with an opt-in tag, to read a cache's tags; no other action on caches.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:s3:::sc-[a-z0-9]+-(export|vault)-\d{12}-[a-z0-9-]+\/sc-[a-z0-9]+-\*\]$/,
    construct: STEP_ROLE,
    reason:
      "Objects of snapcourier's own export or vault bucket (named exactly) under its snapshot id prefix sc-<namespace>-*: each ElastiCache export writes one object per shard, <snapshot id>-<shard>.rdb, so the prefix is the narrowest name IAM can express. The source's steps write (ElastiCache's export check) and delete its exports; the destination's copy-in step reads the source's exports and writes copies into the vaults (with Object Lock retention, never bypassing it), its delete step deletes expired versions, which Object Lock refuses until their retention ends.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:(rds:[a-z0-9-]+:\d{12}:(cluster|db)|redshift:[a-z0-9-]+:\d{12}:cluster):\*\]$/,
    construct: STEP_ROLE,
    reason:
      "The databases to snapshot are chosen at run time by the schedule's include/exclude regular expressions, which IAM cannot express. Limited to this account and region and to creating snapshots (which must carry our namespace tag) and, for Redshift, enabling the cluster's cross-region snapshot copy; no other action on databases.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:redshift:[a-z0-9-]+:\d{12}:snapshot:\*\/rs:\*\]$/,
    construct: STEP_ROLE,
    reason:
      "Redshift automated snapshots (rs:* ids) of the covered clusters as the source of redshift:CopyClusterSnapshot (copy_automated); the target must be one of our sc-<namespace>-* snapshots.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:rds:[a-z0-9-]+:\d{12}:og:\*\]$/,
    construct: STEP_ROLE,
    reason:
      "rds:CopyDBSnapshot authorizes the option group a copy is given; the config maps option groups per region and the engine default groups have engine-specific names. Only in this account and its destination regions, and only for copies carrying our namespace tag.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:kms:[a-z0-9-]+:\d{12}:key\/\*\]$/,
    construct: STEP_ROLE,
    reason:
      "Take and share steps: kms:DescribeKey only (metadata, no cryptographic use) on the source account's keys, to take no snapshot of a database on the AWS managed aws/rds key and refuse snapshots encrypted with it: they cannot be shared. Copy-in step: on the source account's keys, kms:CreateGrant only through RDS (kms:ViaService) and only for AWS resources (kms:GrantIsForAWSResource), and kms:DescribeKey only through RDS: copying a shared encrypted snapshot uses the key of the source database, which the stack cannot know; with ElastiCache, kms:Decrypt only through S3 in the source region, to read the exports, whose key the source stack creates (its key policy lets only this role use it so). Copy steps, when the config leaves a destination key to the stack: the same statements on this account's keys in that region (ElastiCache: kms:GenerateDataKey through S3 for the vault copies), only on keys carrying the alias alias/snapcourier-<namespace> (kms:ResourceAliases), because the key is created by another region's stack and IAM cannot name a key by its alias ARN.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill: read-only Describe calls only (rds:DescribeDBClusters, DescribeDBInstances, DescribeDBClusterSnapshots, DescribeDBSnapshots, redshift:DescribeClusters, DescribeClusterSnapshots, elasticache:DescribeReplicationGroups, for the engines the schedules use) to find the newest copies and what earlier drills left; a listing names no resource. Limited by aws:RequestedRegion to the drill regions; every mutating action is in other statements scoped to the drill's sc-<namespace>-dr-* databases and caches.",
  },
  {
    finding:
      /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:(rds:[a-z0-9-]+:\d{12}:(cluster-snapshot|snapshot):sc-[a-z0-9-]+-\*|redshift:[a-z0-9-]+:\d{12}:snapshot:\*\/sc-[a-z0-9-]+-\*)\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill: the copies it restores, by snapcourier's snapshot id prefix sc-<namespace>-* (ids are generated per interval slot), only as the source of rds:RestoreDBClusterFromSnapshot, rds:RestoreDBInstanceFromDBSnapshot or redshift:RestoreFromClusterSnapshot (Redshift: the source account's shares). No action that deletes, modifies, shares or tags a snapshot is granted on them.",
  },
  {
    finding:
      /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:(rds:[a-z0-9-]+:\d{12}:(cluster|db)|redshift:[a-z0-9-]+:\d{12}:cluster|elasticache:[a-z0-9-]+:\d{12}:(replicationgroup|cluster)):sc-[a-z0-9-]+-dr-\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill: the throwaway databases and caches it restores, named sc-<namespace>-dr-<start>-<database> per drill (an ElastiCache replication group's member clusters add -0001-001 and so on), so the prefix is the narrowest name IAM can express. Creating and tagging them requires our namespace tag in the request; deleting an RDS/Aurora one requires it on the resource (no final snapshot: no snapshot action is granted). A Redshift restore takes no tags, so its delete is scoped by the prefix alone, as is an ElastiCache replication group's (tagged at creation; no final snapshot, elasticache:CreateSnapshot is not granted).",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:rds:[a-z0-9-]+:\d{12}:(cluster-pg|og|pg|subgrp):\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill: RDS authorizes a restore and CreateDBInstance on the DB subnet group, option group and parameter groups the new database gets (the config's drill network per region, else the engine's defaults, whose names vary per engine and version). Only in the drill regions, only with an action that creates an sc-<namespace>-dr-* database carrying our namespace tag; nothing modifies these groups.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:elasticache:[a-z0-9-]+:\d{12}:(parametergroup|subnetgroup):\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill: ElastiCache authorizes CreateReplicationGroup on the parameter group and cache subnet group the new replication group gets (the engine's default.* parameter group, whose name varies per engine and version, and the config's drill network per region, else the default subnet group). Only in the drill regions, only with the action that creates an sc-<namespace>-dr-* replication group carrying our namespace tag; nothing modifies these groups.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:s3:::sc-[a-z0-9]+-vault-\d{12}-[a-z0-9-]+\/sc-[a-z0-9]+-\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill of ElastiCache: reads (s3:GetObject only) the objects of the drill regions' vault buckets (named exactly) under snapcourier's prefix sc-<namespace>-*: the export manifests it lists by the schedule's prefix, and the .rdb copies ElastiCache checks the caller may read when it seeds the drill's replication group from them. Object names are generated per export, so the prefix is the narrowest name IAM can express; nothing writes or deletes in the vault.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:kms:[a-z0-9-]+:\d{12}:key\/\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill, when the config leaves a destination key to the stacks: restoring an encrypted copy needs its key (grants only for AWS resources, DescribeKey, Decrypt, GenerateDataKey), only through RDS in the drill regions (kms:ViaService), and reading the ElastiCache vault's manifests needs kms:Decrypt only through S3 there; only on keys carrying the alias alias/snapcourier-<namespace> (kms:ResourceAliases): the key is created by another region's stack and IAM cannot name a key by its alias ARN.",
  },
  {
    finding: /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:ssm:[a-z0-9-]+:\d{12}:parameter\/snapcourier\/[a-z0-9-]+\/destination\/drills\/\*\]$/,
    construct: DRILL_ROLE,
    reason:
      "Restore drill records: one SSM parameter per drill region, schedule and database (/snapcourier/<namespace>/destination/drills/<region>/<schedule>/<database>), named from the databases found at run time, read by path and overwritten after each drill. No other parameter may be written (the deployed runs are read-only), and the service control policy lets this role change nothing else under /snapcourier/<namespace>/.",
  },
  {
    finding: /^AwsSolutions-S1$/,
    construct: /\/(ExportBucket|VaultBucket-[a-z0-9-]+)\/Resource$/,
    reason:
      "No server access logs: a log bucket in the same account would be no safer than the bucket it logs, and who read, wrote or deleted what is recorded by CloudTrail data events where the organization enables them. Every object snapcourier writes here is also listed and verified by its own steps, and in a vault bucket Object Lock keeps each copy until its retention ends whoever asks; the bucket policy denies changing the lock, versioning, encryption, lifecycle and policy to all but the break-glass and deploy roles.",
  },
  {
    finding: /^AwsSolutions-SQS3$/,
    construct: /\/ScheduleDeadLetters\/Resource$/,
    reason:
      "This queue is itself a dead-letter queue: EventBridge Scheduler sends it the starts it could not deliver (a schedule target's DeadLetterConfig, which cdk-nag does not recognise as DLQ use; it only knows SQS redrive policies). A message in it raises an alarm on the failure topic.",
  },
];

/** Acknowledge, on the construct that raised it, each finding that matches a row above. */
export function acknowledgeFindings(stack: Stack): void {
  const report = new AwsSolutionsChecks().validateScope(stack);
  for (const v of report.violations) {
    for (const r of v.violatingResources) {
      const row = ACCEPTED.find((a) => a.finding.test(v.ruleName) && a.construct.test(r.constructPath ?? ""));
      if (!row) continue;
      const construct = stack.node.findAll().find((c) => c.node.path === r.constructPath);
      if (construct) Validations.of(construct).acknowledge({ id: v.ruleName, reason: row.reason });
    }
  }
}
