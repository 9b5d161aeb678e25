// The vault: guardrails of the destination accounts, generated from the config.
// - copy keys whose policy denies disabling, deleting, re-policying or re-aliasing them to
//   everyone but the break-glass and deploy roles (`copyKeyGuardStatement`);
// - an AWS Organizations service control policy for the destination accounts that denies
//   deleting or changing snapcourier's copies, keys and stack resources to every principal but
//   snapcourier's own roles, the deploy roles and the break-glass role (`serviceControlPolicy`,
//   written to dist/ by `make templates`);
// - EventBridge rules in every destination region that report to the failure topic any such
//   change made by another principal, from CloudTrail management events (`tamperingPatterns`).
import { Stack } from "aws-cdk-lib";
import { AnyPrincipal, Effect, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { EventBus, EventField, type IRuleTarget, Rule, RuleTargetInput } from "aws-cdk-lib/aws-events";
import { EventBus as EventBusTarget, SnsTopic } from "aws-cdk-lib/aws-events-targets";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { Construct } from "constructs";
import { type Config, partitionOf, type VaultInputs } from "./config";

/** AWS's limit on a service control policy document, in characters. */
export const SCP_MAX_CHARS = 5120;

/** Key administration that would make the copies unrestorable or hand the key to another
 * principal; denied in every copy key's policy but to the break-glass and deploy roles. */
export const KEY_ADMIN_ACTIONS = [
  "kms:ScheduleKeyDeletion",
  "kms:DisableKey",
  "kms:PutKeyPolicy",
  "kms:DisableKeyRotation",
  "kms:DeleteAlias",
  "kms:UpdateAlias",
  "kms:TagResource",
  "kms:UntagResource",
];

/** What would destroy or leak a copy, or strip the tag that makes it ours. */
export const SNAPSHOT_ACTIONS = [
  "rds:DeleteDBClusterSnapshot",
  "rds:DeleteDBSnapshot",
  "rds:ModifyDBClusterSnapshotAttribute",
  "rds:ModifyDBSnapshotAttribute",
  "rds:ModifyDBSnapshot",
  "rds:AddTagsToResource",
  "rds:RemoveTagsFromResource",
];

/** Changes to the stacks' resources (functions, state machines and their executions,
 * schedules, roles, deployed runs, topic, dead-letter queue, logs, rules, alarms, stacks). */
export const STACK_ACTIONS = [
  "lambda:Delete*",
  "lambda:Update*",
  "lambda:Put*",
  "lambda:AddPermission",
  "lambda:RemovePermission",
  "lambda:TagResource",
  "lambda:UntagResource",
  "states:Delete*",
  "states:Update*",
  "states:StopExecution",
  "states:TagResource",
  "states:UntagResource",
  "scheduler:Delete*",
  "scheduler:Update*",
  "scheduler:TagResource",
  "scheduler:UntagResource",
  "iam:Delete*",
  "iam:Put*",
  "iam:Attach*",
  "iam:Detach*",
  "iam:Update*",
  "iam:TagRole",
  "iam:UntagRole",
  "ssm:PutParameter",
  "ssm:DeleteParameter*",
  "ssm:AddTagsToResource",
  "ssm:RemoveTagsFromResource",
  "sns:DeleteTopic",
  "sns:SetTopicAttributes",
  "sns:AddPermission",
  "sns:RemovePermission",
  "sns:Unsubscribe",
  "sqs:DeleteQueue",
  "sqs:PurgeQueue",
  "sqs:SetQueueAttributes",
  "sqs:RemovePermission",
  "logs:Delete*",
  "logs:PutRetentionPolicy",
  "events:DeleteRule",
  "events:DisableRule",
  "events:PutRule",
  "events:PutTargets",
  "events:RemoveTargets",
  "cloudwatch:DeleteAlarms",
  "cloudwatch:DisableAlarmActions",
  "cloudwatch:PutMetricAlarm",
  "cloudwatch:DeleteDashboards",
  "cloudformation:DeleteStack",
  "cloudformation:UpdateStack",
  "cloudformation:ExecuteChangeSet",
  "cloudformation:UpdateTerminationProtection",
  "cloudformation:SetStackPolicy",
];

/** The one stack action the restore drill's role needs under /snapcourier/<ns>/ (its records):
 * the service control policy denies it in statements of its own, which except that role. */
export const PUT_PARAMETER = "ssm:PutParameter";

/** The destination roles that act on copies: copy in, copy across regions, delete. */
export const COPY_ROLE_STEPS = ["copy-in-destination", "cross-region-copy", "delete"];

/** The restore drill's role and where it keeps its records (crates/core/src/drill.rs). */
export function drillRoleName(ns: string): string {
  return `snapcourier-${ns}-destination-drill`;
}
export function drillRecordsPath(ns: string): string {
  return `/snapcourier/${ns}/destination/drills/`;
}

/** aws:PrincipalArn patterns of roles named `names` in `account` (`*`: any account). */
function roleArns(partition: string, account: string, names: string[]): string[] {
  return names.map((n) => `arn:${partition}:iam::${account}:role/${n}`);
}

/** Who may administer the copy keys: the break-glass role and the deploy roles (never a
 * snapcourier function: none of them administers a key). */
export function keyAdmins(partition: string, account: string, vault: VaultInputs): string[] {
  return roleArns(partition, account, [...(vault.break_glass_role ? [vault.break_glass_role] : []), ...vault.deploy_roles]);
}

/** The statement every copy key's policy carries (stack-created keys get it from the
 * stacks; keys the config names need it added by hand, as docs/deploy.md says). */
export function copyKeyGuardStatement(partition: string, account: string, vault: VaultInputs): PolicyStatement {
  return new PolicyStatement({
    sid: "VaultOnlyBreakGlassOrDeployRolesAdministerThisKey",
    effect: Effect.DENY,
    principals: [new AnyPrincipal()],
    actions: KEY_ADMIN_ACTIONS,
    resources: ["*"],
    conditions: { ArnNotLike: { "aws:PrincipalArn": keyAdmins(partition, account, vault) } },
  });
}

/** What would unlock, unversion, re-key, expire, re-policy or delete a vault bucket (or a copy
 * in it before its lock ends): denied in every vault bucket's policy but to the break-glass and
 * deploy roles (the deploy roles manage the bucket and its policy). */
export const VAULT_BUCKET_ACTIONS = [
  "s3:BypassGovernanceRetention",
  "s3:PutBucketObjectLockConfiguration",
  "s3:PutBucketVersioning",
  "s3:PutEncryptionConfiguration",
  "s3:PutLifecycleConfiguration",
  "s3:PutBucketPolicy",
  "s3:DeleteBucketPolicy",
  "s3:DeleteBucket",
];

/** The vault buckets' actions as the service control policy denies them: every bucket-level
 * Put and Delete (lock configuration, versioning, policy, ACLs, ownership, the bucket itself),
 * lifecycle rules, and bypassing governance-mode retention; wildcards, as an SCP counts every
 * character. */
export const SCP_VAULT_BUCKET_ACTIONS = [
  "s3:BypassGovernanceRetention",
  "s3:DeleteBucket*",
  "s3:PutBucket*",
  "s3:PutLifecycleConfiguration",
];

/** CloudTrail's names of the bucket-level changes the `buckets` tampering rule reports (they
 * differ from the IAM actions': PutBucketLifecycle is s3:PutLifecycleConfiguration). */
export const VAULT_BUCKET_EVENTS = [
  "PutObjectLockConfiguration",
  "PutBucketVersioning",
  "PutBucketEncryption",
  "DeleteBucketEncryption",
  "PutBucketLifecycle",
  "DeleteBucketLifecycle",
  "PutBucketPolicy",
  "DeleteBucketPolicy",
  "PutBucketOwnershipControls",
  "DeleteBucketOwnershipControls",
  "PutBucketPublicAccessBlock",
  "DeleteBucketPublicAccessBlock",
  "PutBucketReplication",
  "DeleteBucketReplication",
  "DeleteBucket",
];

/** The statement every vault bucket's policy carries. (The account's root user may still
 * change a bucket policy that denies it: S3's lockout safeguard.) */
export function vaultBucketGuardStatement(
  partition: string,
  account: string,
  vault: VaultInputs,
  bucket: { bucketArn: string; arnForObjects(pattern: string): string },
): PolicyStatement {
  return new PolicyStatement({
    sid: "VaultOnlyBreakGlassOrDeployRolesChangeThisVault",
    effect: Effect.DENY,
    principals: [new AnyPrincipal()],
    actions: VAULT_BUCKET_ACTIONS,
    resources: [bucket.bucketArn, bucket.arnForObjects("*")],
    conditions: { ArnNotLike: { "aws:PrincipalArn": keyAdmins(partition, account, vault) } },
  });
}

/** Key ARNs (not aliases) the config names for one destination account, or for all. */
export function namedKeyArns(config: Config, account?: string): string[] {
  return config.destinations
    .filter((d) => account === undefined || d.account === account)
    .flatMap((d) => [d.copy_in_kms_key, ...d.regions.map((r) => r.kms_key)])
    .filter((k): k is string => typeof k === "string" && /:key\//.test(k));
}

/**
 * The service control policy to attach to the destination accounts (or their OU): deny
 * deleting or changing snapcourier's copies, keys and stack resources to every principal but
 * snapcourier's destination roles, the deploy roles and the break-glass role. The functions
 * are excepted only where they act: the copy steps on the copies (snapshots), the restore
 * drill on its records (ssm:PutParameter under /snapcourier/<ns>/destination/drills/ and
 * nothing else under /snapcourier/<ns>/); keys and stack resources only by the break-glass
 * and deploy roles, as are ElastiCache's vault buckets. (The drill's restored sc-<ns>-dr-*
 * databases are no copies: no statement here denies deleting them.) Minified, it must fit
 * AWS's 5,120 characters.
 */
export function serviceControlPolicy(config: Config, vault: VaultInputs): Record<string, unknown> {
  const ns = config.namespace;
  const p = partitionOf(config.source.region);
  const admins = keyAdmins(p, "*", vault);
  const functions = roleArns(p, "*", COPY_ROLE_STEPS.map((step) => `snapcourier-${ns}-destination-${step}`));
  const parameters = `arn:${p}:ssm:*:*:parameter/snapcourier/${ns}/*`;
  // Only with drills: no exception for a role that the stacks do not create.
  const drill = config.drills ? roleArns(p, "*", [drillRoleName(ns)]) : [];
  const nameSid = `Snapcourier${ns.charAt(0).toUpperCase()}${ns.slice(1)}Vault`;
  const named = namedKeyArns(config);
  // ElastiCache's vault buckets, sc-<ns>-vault-<account>-<region> (crates/core/src/naming.rs;
  // the pattern covers their objects too), are stack resources: only break glass and the
  // deploy roles may unlock, re-policy, unversion, expire or delete them. Only when the config
  // schedules ElastiCache, the one engine with vaults. (In the Stacks statement: a statement
  // of their own would cost the SCP some 250 of its 5,120 characters.)
  const vaults = config.schedules.some((s) => s.engine === "elasticache");
  const statements: Record<string, unknown>[] = [
    {
      Sid: `${nameSid}Copies`,
      Effect: "Deny",
      Action: SNAPSHOT_ACTIONS,
      Resource: [`arn:${p}:rds:*:*:cluster-snapshot:sc-${ns}-*`, `arn:${p}:rds:*:*:snapshot:sc-${ns}-*`],
      Condition: { ArnNotLike: { "aws:PrincipalArn": [...functions, ...admins] } },
    },
    {
      Sid: `${nameSid}StackKeys`,
      Effect: "Deny",
      Action: KEY_ADMIN_ACTIONS,
      Resource: "*",
      Condition: {
        StringEquals: { "aws:ResourceTag/snapcourier:namespace": ns },
        ArnNotLike: { "aws:PrincipalArn": admins },
      },
    },
    ...(named.length > 0
      ? [
          {
            Sid: `${nameSid}NamedKeys`,
            Effect: "Deny",
            Action: KEY_ADMIN_ACTIONS,
            Resource: named,
            Condition: { ArnNotLike: { "aws:PrincipalArn": admins } },
          },
        ]
      : []),
    {
      Sid: `${nameSid}Stacks`,
      Effect: "Deny",
      Action: [
        ...(drill.length > 0 ? STACK_ACTIONS.filter((a) => a !== PUT_PARAMETER) : STACK_ACTIONS),
        ...(vaults ? SCP_VAULT_BUCKET_ACTIONS : []),
      ],
      Resource: [
        `arn:${p}:lambda:*:*:function:snapcourier-${ns}-*`,
        `arn:${p}:states:*:*:stateMachine:snapcourier-${ns}-*`,
        `arn:${p}:states:*:*:execution:snapcourier-${ns}-*`,
        `arn:${p}:scheduler:*:*:schedule/snapcourier-${ns}-*`,
        `arn:${p}:scheduler:*:*:schedule-group/snapcourier-${ns}-*`,
        `arn:${p}:iam::*:role/snapcourier-${ns}-*`,
        parameters,
        `arn:${p}:sns:*:*:snapcourier-${ns}-*`,
        `arn:${p}:sqs:*:*:snapcourier-${ns}-*`,
        `arn:${p}:logs:*:*:log-group:/aws/lambda/snapcourier-${ns}-*`,
        `arn:${p}:logs:*:*:log-group:/aws/vendedlogs/states/snapcourier-${ns}-*`,
        `arn:${p}:events:*:*:rule/snapcourier-${ns}-*`,
        `arn:${p}:cloudwatch:*:*:alarm:snapcourier-${ns}-*`,
        `arn:${p}:cloudwatch::*:dashboard/snapcourier-${ns}-*`,
        `arn:${p}:cloudformation:*:*:stack/snapcourier-${ns}-*`,
        ...(vaults ? [`arn:${p}:s3:::sc-${ns}-vault-*`] : []),
      ],
      Condition: { ArnNotLike: { "aws:PrincipalArn": admins } },
    },
    // Writing the deployed runs and the drill records: break glass, the deploy roles and the
    // drill's role, which may write its records and no other parameter (the next statement).
    ...(drill.length > 0
      ? [
          {
            Sid: `${nameSid}Puts`,
            Effect: "Deny",
            Action: PUT_PARAMETER,
            Resource: parameters,
            Condition: { ArnNotLike: { "aws:PrincipalArn": [...drill, ...admins] } },
          },
          {
            Sid: `${nameSid}DrillPuts`,
            Effect: "Deny",
            Action: PUT_PARAMETER,
            NotResource: `arn:${p}:ssm:*:*:parameter${drillRecordsPath(ns)}*`,
            Condition: { ArnLike: { "aws:PrincipalArn": drill } },
          },
        ]
      : []),
  ];
  return { Version: "2012-10-17", Statement: statements };
}

/** A principal other than snapcourier's own roles (CloudTrail's userIdentity): anyone not
 * acting through a role, or through a role whose name does not start with ours. */
function notSnapcourier(ns: string): Record<string, unknown> {
  return {
    $or: [
      { type: [{ "anything-but": "AssumedRole" }] },
      { sessionContext: { sessionIssuer: { userName: [{ "anything-but": { prefix: `snapcourier-${ns}-` } }] } } },
    ],
  };
}

const CLOUDTRAIL = ["AWS API Call via CloudTrail"];

/**
 * EventBridge patterns (CloudTrail management events) of tampering with the vault in one
 * region: `copies` (our snapshots deleted, shared, re-tagged by anyone but snapcourier),
 * `keys` (any administration of the copy keys with the given ids, or of our alias, by anyone:
 * a deploy that changes a key is reported too),
 * `stack` (any change to the stacks' resources by anyone but snapcourier),
 * `buckets` (any change to a vault bucket's lock, versioning, encryption, lifecycle, policy,
 * ownership, public access block or replication, or its deletion, by anyone: a deploy that
 * changes one is reported too; the bucket policy and the SCP deny all but the break-glass and
 * deploy roles).
 */
export function tamperingPatterns(ns: string, keyIds: string[]): Record<string, Record<string, unknown>> {
  const prefix = `snapcourier-${ns}-`;
  return {
    copies: {
      source: ["aws.rds"],
      "detail-type": CLOUDTRAIL,
      detail: {
        eventName: SNAPSHOT_ACTIONS.map((a) => a.split(":")[1]),
        requestParameters: {
          $or: [
            { dBClusterSnapshotIdentifier: [{ prefix: `sc-${ns}-` }] },
            { dBSnapshotIdentifier: [{ prefix: `sc-${ns}-` }] },
            {
              resourceName: [
                { wildcard: `*:cluster-snapshot:sc-${ns}-*` },
                { wildcard: `*:snapshot:sc-${ns}-*` },
              ],
            },
          ],
        },
        userIdentity: notSnapcourier(ns),
      },
    },
    keys: {
      source: ["aws.kms"],
      "detail-type": CLOUDTRAIL,
      detail: {
        eventName: KEY_ADMIN_ACTIONS.map((a) => a.split(":")[1]),
        // CloudTrail names the key as the caller did: id, key ARN, alias name or alias ARN.
        requestParameters: {
          $or: [
            { keyId: keyIds.map((id) => ({ wildcard: `*${id}` })) },
            { targetKeyId: keyIds.map((id) => ({ wildcard: `*${id}` })) },
            { keyId: [{ wildcard: `*alias/snapcourier-${ns}` }] },
            { aliasName: [`alias/snapcourier-${ns}`] },
          ],
        },
      },
    },
    buckets: {
      source: ["aws.s3"],
      "detail-type": CLOUDTRAIL,
      detail: {
        eventName: VAULT_BUCKET_EVENTS,
        requestParameters: { bucketName: [{ prefix: `sc-${ns}-vault-` }] },
      },
    },
    stack: {
      source: [
        "aws.lambda",
        "aws.states",
        "aws.scheduler",
        "aws.iam",
        "aws.ssm",
        "aws.sns",
        "aws.sqs",
        "aws.logs",
        "aws.events",
        "aws.monitoring",
        "aws.cloudformation",
      ],
      "detail-type": CLOUDTRAIL,
      detail: {
        // CloudTrail's names (Lambda's carry an API version suffix, hence prefixes).
        eventName: ["Delete", "Update", "Put", "Remove", "Stop", "Disable", "Untag", "Tag", "Set", "Attach", "Detach", "Purge", "Unsubscribe", "ExecuteChangeSet", "AddPermission"].map(
          (p) => ({ prefix: p }),
        ),
        requestParameters: {
          $or: [
            { functionName: [{ wildcard: `*${prefix}*` }] },
            { stateMachineArn: [{ wildcard: `*:stateMachine:${prefix}*` }] },
            { executionArn: [{ wildcard: `*:execution:${prefix}*` }] },
            { groupName: [{ prefix }] },
            { roleName: [{ prefix }] },
            { name: [{ prefix: `/snapcourier/${ns}/` }, { prefix }] },
            { names: [{ prefix: `/snapcourier/${ns}/` }] },
            { topicArn: [{ wildcard: `*:${prefix}*` }] },
            { subscriptionArn: [{ wildcard: `*:${prefix}*` }] },
            { queueUrl: [{ wildcard: `*/${prefix}*` }] },
            { logGroupName: [{ wildcard: `*/${prefix}*` }] },
            { rule: [{ prefix }] },
            { alarmNames: [{ prefix }] },
            { alarmName: [{ prefix }] },
            { dashboardNames: [{ prefix }] },
            { stackName: [{ wildcard: `*${prefix}*` }] },
            { resource: [{ wildcard: `*${prefix}*` }] },
            { resourceArn: [{ wildcard: `*${prefix}*` }] },
          ],
        },
        userIdentity: notSnapcourier(ns),
      },
    },
  };
}

const DESCRIPTIONS: Record<string, string> = {
  copies: "our copies deleted, shared or re-tagged by anyone but snapcourier",
  keys: "administration of our copy keys, by anyone",
  buckets: "changes to our vault buckets' lock, versioning, encryption, lifecycle, policy or access, or their deletion, by anyone",
  stack: "changes to our stack resources by anyone but snapcourier",
};

/** Names of the rules in each region: `snapcourier-<ns>-vault-<what>`. */
export function ruleName(ns: string, what: string): string {
  return `snapcourier-${ns}-vault-${what}`;
}

/**
 * The tampering rules in the stack's region. In the failure topic's region they publish a
 * one-line report to the topic (and a rule there does the same for events the other regions
 * forward); elsewhere they forward the event to the default bus of the topic's region (SNS
 * targets must be in the rule's region).
 */
export function addTamperingRules(
  scope: Construct,
  ns: string,
  keyIds: string[],
  target: { topic: ITopic; otherRegions: string[] } | { homeRegion: string },
  vaultBuckets = false,
): Rule[] {
  const stack = Stack.of(scope);
  const patterns = tamperingPatterns(ns, keyIds);
  let ruleTarget: IRuleTarget;
  if ("topic" in target) {
    ruleTarget = new SnsTopic(target.topic, {
      message: RuleTargetInput.fromText(
        `snapcourier ${ns} vault: ${EventField.fromPath("$.detail.eventName")} in account ${EventField.account} ${EventField.region} at ${EventField.time} by ${EventField.fromPath("$.detail.userIdentity.arn")}: ${EventField.fromPath("$.detail.requestParameters")} (a change to snapcourier's copies, keys or stacks by a principal other than snapcourier; if it was not you, treat the destination account as compromised)`,
      ),
    });
  } else {
    const role = new Role(scope, "ForwardTamperingRole", {
      roleName: `snapcourier-${ns}-destination-forward-${stack.region}`,
      assumedBy: new ServicePrincipal("events.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
      }),
      description: `snapcourier ${ns}: forwards reports of tampering in ${stack.region} to ${target.homeRegion}`,
    });
    ruleTarget = new EventBusTarget(
      EventBus.fromEventBusArn(
        scope,
        "HomeBus",
        `arn:${stack.partition}:events:${target.homeRegion}:${stack.account}:event-bus/default`,
      ),
      { role },
    );
  }
  const rules: Rule[] = [];
  for (const [what, pattern] of Object.entries(patterns)) {
    if (what === "keys" && keyIds.length === 0) continue;
    if (what === "buckets" && !vaultBuckets) continue;
    const rule = new Rule(scope, `Tampering-${what}`, {
      ruleName: ruleName(ns, what),
      description: `snapcourier ${ns}: report ${DESCRIPTIONS[what] ?? what}`,
      // Only this region's events: the topic's region also receives the others' forwarded.
      eventPattern: {
        source: pattern.source as string[],
        detailType: pattern["detail-type"] as string[],
        detail: pattern.detail as Record<string, unknown>,
        region: [stack.region],
      },
      targets: [ruleTarget],
    });
    rules.push(rule);
  }
  if ("topic" in target && target.otherRegions.length > 0) {
    rules.push(
      new Rule(scope, "Tampering-forwarded", {
        ruleName: ruleName(ns, "forwarded"),
        description: `snapcourier ${ns}: report tampering the vault rules of ${target.otherRegions.join(", ")} forwarded here`,
        eventPattern: {
          source: ["aws.rds", "aws.kms", "aws.s3", ...(patterns.stack!.source as string[])],
          detailType: CLOUDTRAIL,
          region: target.otherRegions,
        },
        targets: [ruleTarget],
      }),
    );
  }
  return rules;
}
