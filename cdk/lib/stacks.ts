// SourceStack (source account, source region) and DestinationStack (one per destination
// account, in the source region where its state machine runs, plus a DestinationKeyStack per
// other region whose KMS key it creates). Both: the Lambda steps from prebuilt binaries, the
// state machine from the ASL file, one EventBridge Scheduler schedule per config schedule with
// the exact `snapcourier run` input, an encrypted SNS topic for failure reports and alarms,
// the ExecutionsFailed alarm, a recovery-point (RPO heartbeat) alarm per schedule, and a
// dashboard. The source stack outputs the key policy statements its database keys need.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Annotations,
  CfnOutput,
  CfnParameter,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  Tags,
} from "aws-cdk-lib";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import {
  Architecture,
  ApplicationLogLevel,
  Code,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Bucket, type IBucket } from "aws-cdk-lib/aws-s3";
import { CfnSchedule, CfnScheduleGroup } from "aws-cdk-lib/aws-scheduler";
import { Topic } from "aws-cdk-lib/aws-sns";
import { ParameterTier, StringParameter } from "aws-cdk-lib/aws-ssm";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { DefinitionBody, LogLevel, StateMachine } from "aws-cdk-lib/aws-stepfunctions";
import type { Construct } from "constructs";
import { type Config, partitionOf, type ScheduledInput, type VaultInputs } from "./config";
import { addTamperingRules, copyKeyGuardStatement, namedKeyArns } from "./vault";
import type { Rule } from "aws-cdk-lib/aws-events";
import { type Engine, type Scope, type Step, NAMESPACE_TAG, statementsFor } from "./permissions";

export const STATEMACHINE_DIR = join(__dirname, "..", "..", "statemachine");

/** The ASL placeholder each step's function ARN fills. */
export const PLACEHOLDERS: Record<Step, string> = {
  take: "TakeFunctionArn",
  share: "ShareFunctionArn",
  copy_in_destination: "CopyInDestinationFunctionArn",
  cross_region_copy: "CrossRegionCopyFunctionArn",
  delete: "DeleteFunctionArn",
};
export const TOPIC_PLACEHOLDER = "FailureTopicArn";
/** CloudWatch namespace of the functions' EMF metrics (crates/core/src/heartbeat.rs). */
export const METRIC_NAMESPACE = "snapcourier";

/** Every `${Name}` an ASL file uses, sorted. */
export function placeholders(asl: string): string[] {
  return [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] ?? ""))].sort();
}

export interface SnapcourierStackProps extends StackProps {
  config: Config;
  /** Directory holding one subdirectory per step, each with its `bootstrap` binary; absent
   * for templates, whose functions take their code from the LambdaBucket parameter. */
  lambdaDir?: string;
  /** The scheduled runs of this stack (`snapcourier inputs`). */
  runs: ScheduledInput[];
  /** SSM parameter path of this side's deployed runs (`snapcourier inputs`, deployed_runs):
   * the functions run only these. */
  deployedRuns: string;
}

/** Longest SSM parameter value: 4 KB in the standard tier, 8 KB in the advanced one. */
const STANDARD_PARAMETER_BYTES = 4096;
const ADVANCED_PARAMETER_BYTES = 8192;

type Side = "source" | "destination";

abstract class SnapcourierStack extends Stack {
  readonly topic: Topic;
  readonly stateMachine: StateMachine;
  readonly functions: Partial<Record<Step, LambdaFunction>> = {};
  readonly runParameters: StringParameter[];

  protected constructor(
    scope: Construct,
    id: string,
    side: Side,
    steps: Step[],
    permissions: Scope,
    props: SnapcourierStackProps,
  ) {
    super(scope, id, props);
    const ns = props.config.namespace;
    Tags.of(this).add(NAMESPACE_TAG, ns);
    const stateMachineName = permissions.stateMachineName;

    // Failure reports and alarms: a customer managed key, rotated, usable by CloudWatch alarms.
    const key = new Key(this, "TopicKey", {
      description: `snapcourier ${ns} ${side}: encrypts the failure topic and the schedules' dead-letter queue`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsPublishToTheTopic",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
    );
    this.topic = new Topic(this, "FailureTopic", {
      // Named, like every resource of the stacks, so the vault's guardrails can name it.
      topicName: `snapcourier-${ns}-${side}-failures`,
      displayName: `snapcourier ${ns} ${side} failures`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfThisAccount",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": this.account },
          ArnLike: { "aws:SourceArn": `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*` },
        },
      }),
    );

    // The deployed configuration is the only configuration: each schedule's run, exactly the
    // input its schedule passes, in a parameter the functions read before they act. A run
    // started by hand with any other input is refused (crates/core/src/deployed.rs).
    this.runParameters = props.runs.map((run) => {
      const value = JSON.stringify(run.input);
      const bytes = Buffer.byteLength(value, "utf8");
      if (bytes > ADVANCED_PARAMETER_BYTES) {
        throw new Error(
          `schedule ${run.schedule}: its ${side} run is ${bytes} bytes, more than an SSM parameter holds (${ADVANCED_PARAMETER_BYTES}); shorten its include/exclude patterns or option_groups`,
        );
      }
      return new StringParameter(this, `Run-${run.schedule}`, {
        parameterName: `${props.deployedRuns}${run.schedule}`,
        description: `snapcourier ${ns} ${side}: the deployed run of schedule ${run.schedule} (the only input its functions accept)`,
        stringValue: value,
        tier: bytes > STANDARD_PARAMETER_BYTES ? ParameterTier.ADVANCED : ParameterTier.STANDARD,
      });
    });
    for (const step of steps) {
      this.functions[step] = this.stepFunction(step, side, permissions, props);
    }

    // The state machine, from the ASL file as reviewed, with exactly its placeholders mapped.
    const aslPath = join(STATEMACHINE_DIR, `${side}.asl.json`);
    const asl = readFileSync(aslPath, "utf8");
    const substitutions: Record<string, string> = { [TOPIC_PLACEHOLDER]: this.topic.topicArn };
    for (const step of steps) {
      const fn = this.functions[step];
      if (fn) substitutions[PLACEHOLDERS[step]] = fn.functionArn;
    }
    const used = placeholders(asl);
    const unmapped = used.filter((p) => !(p in substitutions));
    const unused = Object.keys(substitutions).filter((p) => !used.includes(p));
    if (unmapped.length > 0 || unused.length > 0) {
      throw new Error(
        `${aslPath}: placeholders ${JSON.stringify(used)} do not match the stack's substitutions ${JSON.stringify(Object.keys(substitutions).sort())} (unmapped: ${unmapped.join(", ") || "none"}; unused: ${unused.join(", ") || "none"})`,
      );
    }
    const logGroup = new LogGroup(this, "StateMachineLogs", {
      logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Executions end by themselves (a destination run stops at its deadline, before the next
    // run of its schedule); the timeout is the backstop that keeps a stuck execution from
    // blocking every later one of its schedule. One state machine serves every schedule of
    // the side: the longest interval.
    const timeoutSeconds = Math.max(1, ...props.runs.map((r) => r.execution_timeout_seconds));
    const definition = { ...JSON.parse(asl), TimeoutSeconds: timeoutSeconds };
    const stateMachineRole = new Role(this, "StateMachineRole", {
      roleName: `snapcourier-${ns}-${side}-states`,
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: `snapcourier ${ns} ${side}: the state machine invokes the steps and publishes failure reports`,
    });
    this.stateMachine = new StateMachine(this, "StateMachine", {
      stateMachineName,
      role: stateMachineRole,
      definitionBody: DefinitionBody.fromString(JSON.stringify(definition, null, 2)),
      definitionSubstitutions: substitutions,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    for (const fn of Object.values(this.functions)) fn.grantInvoke(this.stateMachine);
    // Publishing failure reports (explicit: grantPublish would add kms:GenerateDataKey*).
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: "PublishFailureReports",
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: "EncryptFailureReportsViaSns",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `sns.${this.region}.amazonaws.com` } },
      }),
    );

    // One schedule per config schedule, whose input is what `snapcourier run` builds.
    const schedulerRole = new Role(this, "SchedulerRole", {
      roleName: `snapcourier-${ns}-${side}-scheduler`,
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
      description: `snapcourier ${ns} ${side}: EventBridge Scheduler starts the state machine`,
    });
    this.stateMachine.grantStartExecution(schedulerRole);
    // A start the scheduler could not make (after its retries) lands here, and alarms: a
    // schedule that silently stops starting runs is a schedule that stops protecting.
    const deadLetters = new Queue(this, "ScheduleDeadLetters", {
      queueName: `snapcourier-${ns}-${side}-schedule-dead-letters`,
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // The scheduler sends to the dead-letter queue with the schedule's role (explicit
    // statements: grantSendMessages would add kms:Encrypt and kms:ReEncrypt*).
    schedulerRole.addToPolicy(
      new PolicyStatement({
        sid: "SendUndeliveredStarts",
        actions: ["sqs:SendMessage"],
        resources: [deadLetters.queueArn],
      }),
    );
    schedulerRole.addToPolicy(
      new PolicyStatement({
        sid: "EncryptUndeliveredStartsViaSqs",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `sqs.${this.region}.amazonaws.com` } },
      }),
    );
    const group = new CfnScheduleGroup(this, "Schedules", { name: `snapcourier-${ns}-${side}` });
    for (const run of props.runs) {
      new CfnSchedule(this, `Schedule-${run.schedule}`, {
        groupName: group.ref,
        description: `snapcourier ${ns} ${side}: schedule ${run.schedule}`,
        scheduleExpression: run.expression,
        scheduleExpressionTimezone: "UTC",
        flexibleTimeWindow: { mode: "OFF" },
        state: "ENABLED",
        target: {
          arn: this.stateMachine.stateMachineArn,
          roleArn: schedulerRole.roleArn,
          input: JSON.stringify(run.input),
          retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
          deadLetterConfig: { arn: deadLetters.queueArn },
        },
      });
    }

    const alarmAction = new SnsAction(this.topic);
    const failed = new Alarm(this, "ExecutionsFailed", {
      alarmName: `snapcourier-${ns}-${side}-executions-failed`,
      alarmDescription: `A snapcourier ${side} execution failed; the failure topic carries the report naming each resource.`,
      metric: this.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: "Sum" }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    failed.addAlarmAction(alarmAction);
    const undelivered = new Alarm(this, "ScheduleStartsUndelivered", {
      alarmName: `snapcourier-${ns}-${side}-schedule-starts-undelivered`,
      alarmDescription:
        `EventBridge Scheduler could not start a snapcourier ${side} execution (after its retries): ` +
        `that run never happened. The message in snapcourier-${ns}-${side}-schedule-dead-letters says which schedule and why ` +
        `(often the scheduler role, a deleted state machine or a throttled account).`,
      metric: deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: "Maximum" }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    undelivered.addAlarmAction(alarmAction);
    // An execution that timed out or was stopped by hand sent no report of its own.
    const endedWithoutReport = (
      [
        ["ExecutionsTimedOut", "timed-out", "timed out (it ran longer than its schedule's interval; look for a step that never returned)"],
        ["ExecutionsAborted", "aborted", "was aborted (stopped by hand or by a deployment); its schedule's databases may be unprotected until the next run"],
      ] as const
    ).map(([metricName, suffix, what]) => {
      const alarm = new Alarm(this, metricName, {
        alarmName: `snapcourier-${ns}-${side}-executions-${suffix}`,
        alarmDescription: `A snapcourier ${side} execution ${what}. No failure report was sent: see the execution in ${stateMachineName}.`,
        metric: this.stateMachine.metric(metricName, { period: Duration.minutes(5), statistic: "Sum" }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(alarmAction);
      return alarm;
    });

    // The RPO heartbeat: each run's last step writes RecoveryPointAge (EMF in its log); no
    // value for two intervals (a disabled schedule, a stuck state machine, an engine that
    // stopped producing snapshots) is as bad as a value that is too old.
    const heartbeats: Alarm[] = [];
    const ages: Metric[] = [];
    const inFlight: Metric[] = [];
    for (const run of props.runs) {
      const w = run.heartbeat;
      const dimensionsMap = { Deployment: ns, Side: side, Schedule: run.schedule };
      const age = new Metric({
        namespace: METRIC_NAMESPACE,
        metricName: "RecoveryPointAge",
        dimensionsMap,
        statistic: "Maximum",
        period: Duration.seconds(w.period_seconds),
      });
      // A label would make the alarm a metric-math alarm; only the dashboard's copy has one.
      ages.push(age.with({ label: run.schedule }));
      if (side === "destination") {
        inFlight.push(
          new Metric({
            namespace: METRIC_NAMESPACE,
            metricName: "CopiesInFlight",
            dimensionsMap,
            statistic: "Maximum",
            period: Duration.minutes(5),
            label: run.schedule,
          }),
        );
      }
      const alarm = new Alarm(this, `RecoveryPoint-${run.schedule}`, {
        alarmName: `snapcourier-${ns}-${side}-${run.schedule}-recovery-point`,
        alarmDescription:
          `Schedule ${run.schedule} (${side}): no recovery point protected within ${w.threshold_seconds / 3600} hours ` +
          `(two intervals)${w.missing_data_breaching ? ", or no run reported one" : ""}. ` +
          `Check the schedule is enabled and the ${stateMachineName} executions.`,
        metric: age,
        threshold: w.threshold_seconds,
        evaluationPeriods: w.evaluation_periods,
        datapointsToAlarm: w.evaluation_periods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: w.missing_data_breaching ? TreatMissingData.BREACHING : TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(alarmAction);
      alarm.addOkAction(alarmAction);
      heartbeats.push(alarm);
      // Per database: the newest point above is the schedule's, which one healthy database
      // keeps young; each run also counts the databases with none within two intervals. The
      // alarm keeps its state between runs (missing data ignored) until a run reports 0.
      const unprotected = new Alarm(this, `UnprotectedDatabases-${run.schedule}`, {
        alarmName: `snapcourier-${ns}-${side}-${run.schedule}-unprotected-databases`,
        alarmDescription:
          `Schedule ${run.schedule} (${side}): some databases have no recovery point protected within ` +
          `${w.threshold_seconds / 3600} hours (two intervals). The ${side} functions' logs name each ` +
          `("database without a protected recovery point"), as does \`snapcourier run\`.`,
        metric: new Metric({
          namespace: METRIC_NAMESPACE,
          metricName: "UnprotectedDatabases",
          dimensionsMap,
          statistic: "Maximum",
          period: Duration.seconds(w.period_seconds),
        }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: TreatMissingData.IGNORE,
      });
      unprotected.addAlarmAction(alarmAction);
      unprotected.addOkAction(alarmAction);
      heartbeats.push(unprotected);
      if (!w.missing_data_breaching) {
        Annotations.of(alarm).addWarningV2(
          "snapcourier:heartbeat-gap",
          `schedule ${run.schedule} runs more than 3.5 days apart: CloudWatch evaluates at most 7 days, so its recovery-point alarm watches the age each run reports but not a missing run`,
        );
      }
    }

    new Dashboard(this, "Dashboard", {
      dashboardName: `snapcourier-${ns}-${side}`,
      defaultInterval: Duration.days(7),
      widgets: [
        [
          new AlarmStatusWidget({
            title: "Alarms",
            alarms: [failed, ...endedWithoutReport, ...heartbeats],
            width: 24,
            height: 3,
          }),
        ],
        [
          new GraphWidget({
            title: "Executions",
            left: [
              this.stateMachine.metricStarted({ period: Duration.hours(1), statistic: "Sum", label: "started" }),
              this.stateMachine.metricSucceeded({ period: Duration.hours(1), statistic: "Sum", label: "succeeded" }),
              this.stateMachine.metricFailed({ period: Duration.hours(1), statistic: "Sum", label: "failed" }),
              this.stateMachine.metricTimedOut({ period: Duration.hours(1), statistic: "Sum", label: "timed out" }),
            ],
            width: 12,
          }),
          new GraphWidget({
            title: "Step function errors",
            left: Object.entries(this.functions).map(([step, fn]) =>
              fn.metricErrors({ period: Duration.hours(1), statistic: "Sum", label: step }),
            ),
            width: 12,
          }),
        ],
        [
          new GraphWidget({
            title: "Newest protected recovery point age (seconds), per schedule",
            left: ages,
            leftAnnotations: props.runs.map((run) => ({
              value: run.heartbeat.threshold_seconds,
              label: `${run.schedule} alarm`,
            })),
            width: side === "destination" ? 12 : 24,
          }),
          ...(side === "destination"
            ? [new GraphWidget({ title: "Copies in flight, per schedule", left: inFlight, width: 12 })]
            : []),
        ],
      ],
    });
  }

  private lambdaBucket?: IBucket;
  private lambdaPrefix?: CfnParameter;

  /** The step's code: the prebuilt binary as an asset, or (templates for deploying without
   * CDK) `<LambdaPrefix><step>.zip` in the bucket named by the `LambdaBucket` parameter. */
  private lambdaCode(step: Step, props: SnapcourierStackProps): Code {
    if (props.lambdaDir === undefined) {
      if (!this.lambdaBucket || !this.lambdaPrefix) {
        const bucket = new CfnParameter(this, "LambdaBucket", {
          type: "String",
          description: "S3 bucket in this stack's region holding the Lambda zips (make templates writes them to dist/lambda/)",
          allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        });
        this.lambdaPrefix = new CfnParameter(this, "LambdaPrefix", {
          type: "String",
          default: "snapcourier/",
          description: "Key prefix of the zips in LambdaBucket: <prefix><step>.zip",
        });
        this.lambdaBucket = Bucket.fromBucketName(this, "LambdaCodeBucket", bucket.valueAsString);
      }
      return Code.fromBucket(this.lambdaBucket, `${this.lambdaPrefix.valueAsString}${step}.zip`);
    }
    const dir = join(props.lambdaDir, step);
    if (!existsSync(join(dir, "bootstrap"))) {
      throw new Error(
        `no Lambda binary at ${join(dir, "bootstrap")}: build them with \`cargo lambda build --release --arm64\` or pass -c lambdaDir=DIR`,
      );
    }
    return Code.fromAsset(dir);
  }

  private stepFunction(step: Step, side: Side, scope: Scope, props: SnapcourierStackProps): LambdaFunction {
    const ns = props.config.namespace;
    const code = this.lambdaCode(step, props);
    const id = step
      .split("_")
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join("");
    const name = `snapcourier-${ns}-${side}-${step.replace(/_/g, "-")}`;
    const logGroup = new LogGroup(this, `${id}Logs`, {
      logGroupName: `/aws/lambda/${name}`,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new Role(this, `${id}Role`, {
      // A fixed name: the source keys' policies name the destination's copy-in role.
      roleName: name,
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `snapcourier ${ns} ${side}: the ${step} step`,
    });
    for (const s of statementsFor(step, scope)) role.addToPrincipalPolicy(s);
    // Its own log group only (a role given to a Function gets no log permission by itself):
    // without it there are no logs and no RecoveryPointAge metric.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn],
      }),
    );
    // Its side's deployed runs, and no other parameter.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "ReadDeployedRuns",
        actions: ["ssm:GetParameter"],
        resources: props.runs.map(
          (run) => `arn:${this.partition}:ssm:${this.region}:${this.account}:parameter${props.deployedRuns}${run.schedule}`,
        ),
      }),
    );
    const fn = new LambdaFunction(this, id, {
      functionName: name,
      description: `snapcourier ${ns} ${side}: ${step}`,
      runtime: Runtime.PROVIDED_AL2023,
      architecture: Architecture.ARM_64,
      handler: "bootstrap",
      code,
      memorySize: 256,
      timeout: Duration.minutes(5),
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      environment: {
        SNAPCOURIER_MAX_ATTEMPTS: String(props.config.settings?.max_attempts ?? 5),
        SNAPCOURIER_DEPLOYED_RUNS: props.deployedRuns,
      },
    });
    return fn;
  }
}

function engines(config: Config): Set<Engine> {
  return new Set(config.schedules.map((s) => s.engine));
}

function otherRegions(config: Config): string[] {
  const all = config.destinations.flatMap((d) => d.regions.map((r) => r.region));
  return [...new Set(all)].filter((r) => r !== config.source.region);
}

export class SourceStack extends SnapcourierStack {
  constructor(scope: Construct, id: string, props: SnapcourierStackProps) {
    const c = props.config;
    const redshift = c.schedules.filter((s) => s.engine === "redshift");
    const permissions: Scope = {
      namespace: c.namespace,
      engines: engines(c),
      account: c.source.account,
      regions: [c.source.region],
      sourceAccount: c.source.account,
      sourceRegion: c.source.region,
      redshiftCopyRegions: redshift.length > 0 ? otherRegions(c) : [],
      redshiftCopyKey: c.source.redshift_copy_kms_key ?? undefined,
      redshiftCopyAutomated: redshift.some(
        (s) => (s as { redshift?: { copy_automated?: boolean } }).redshift?.copy_automated === true,
      ),
      destinationKeys: [],
      stateMachineName: `snapcourier-${c.namespace}-source`,
    };
    super(scope, id, "source", ["take", "share", "delete"], permissions, props);
    const statements = sourceKeyPolicyStatements(c);
    const text = JSON.stringify(statements);
    new CfnOutput(this, "SourceKeyPolicyStatements", {
      description:
        "Add these statements to the key policy of every KMS key that encrypts a database a schedule covers (CloudFormation cannot edit keys it does not own): they let each destination's copy-in role use the key through RDS in the source region, and nothing else.",
      value:
        statements.length === 0
          ? "none needed: no Aurora or RDS schedule"
          : text.length <= 4000
            ? text
            : "too long for an output: see dist/source-key-policy.json (make templates)",
    });
  }
}

export { partitionOf } from "./config";

/**
 * Key policy statements for the source account's database keys: each destination account's
 * copy-in role (and no other principal) may use the key only through RDS in the source region,
 * which it does when copying a shared encrypted snapshot. Empty without Aurora/RDS schedules
 * (Redshift copies stay in the source account).
 */
export function sourceKeyPolicyStatements(config: Config): Record<string, unknown>[] {
  if (!config.schedules.some((s) => s.engine === "aurora" || s.engine === "rds")) return [];
  const p = partitionOf(config.source.region);
  const accounts = config.destinations.map((d) => d.account);
  const roles = accounts.map(
    (a) => `arn:${p}:iam::${a}:role/snapcourier-${config.namespace}-destination-copy-in-destination`,
  );
  const only = {
    StringEquals: {
      "kms:ViaService": `rds.${config.source.region}.amazonaws.com`,
      "kms:CallerAccount": accounts,
    },
    ArnEquals: { "aws:PrincipalArn": roles },
  };
  const principal = { AWS: accounts.map((a) => `arn:${p}:iam::${a}:root`) };
  return [
    {
      Sid: `Snapcourier${config.namespace}DestinationsCopyViaRds`,
      Effect: "Allow",
      Principal: principal,
      Action: ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
      Resource: "*",
      Condition: only,
    },
    {
      Sid: `Snapcourier${config.namespace}DestinationsGrantsViaRds`,
      Effect: "Allow",
      Principal: principal,
      Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      Resource: "*",
      Condition: { ...only, Bool: { "kms:GrantIsForAWSResource": "true" } },
    },
  ];
}

/** The KMS key a destination creates in one region when the config names none there: RDS
 * re-encrypts copies with it, found by its alias `alias/snapcourier-<namespace>`. Only the
 * break-glass and deploy roles may disable, delete, re-policy or re-alias it (vault.ts). */
export function destinationKey(scope: Construct, id: string, namespace: string, region: string, vault: VaultInputs): Key {
  const key = new Key(scope, id, {
    alias: `snapcourier-${namespace}`,
    description: `snapcourier ${namespace}: encrypts this account's snapshot copies in ${region}`,
    enableKeyRotation: true,
    // Copies encrypted with it outlive the stack: deleting the key would make them unrestorable.
    removalPolicy: RemovalPolicy.RETAIN,
  });
  key.addToResourcePolicy(copyKeyGuardStatement(partitionOf(region), Stack.of(scope).account, vault));
  return key;
}

/** Ids of the keys (not aliases) the config names for one destination account in one region. */
function namedKeyIds(config: Config, account: string, region: string): string[] {
  // Validation puts each key in the region it serves (the copy-in key in the source region).
  return namedKeyArns(config, account)
    .filter((arn) => arn.split(":")[3] === region)
    .map((arn) => arn.split("/").pop() ?? arn);
}

export interface DestinationRegionStackProps extends StackProps {
  config: Config;
  account: string;
  region: string;
  /** Whether the config names no key here, so this stack creates it. */
  createKey: boolean;
  vault: VaultInputs;
}

/** A destination's stack in a region other than its main stack's: the copy key when the
 * config names none there, and the vault's tampering rules of the region, which forward to
 * the failure topic's region. */
export class DestinationRegionStack extends Stack {
  readonly key?: Key;
  readonly rules: Rule[];
  constructor(scope: Construct, id: string, props: DestinationRegionStackProps) {
    super(scope, id, props);
    const ns = props.config.namespace;
    Tags.of(this).add(NAMESPACE_TAG, ns);
    if (props.createKey) this.key = destinationKey(this, "CopyKey", ns, props.region, props.vault);
    const keys = [...(this.key ? [this.key.keyId] : []), ...namedKeyIds(props.config, props.account, props.region)];
    this.rules = addTamperingRules(this, ns, keys, { homeRegion: props.config.source.region });
  }
}

export interface DestinationStackProps extends SnapcourierStackProps {
  account: string;
  vault: VaultInputs;
  /** Regions whose key this destination's stacks create (`snapcourier inputs`). */
  stackKeyRegions: string[];
}

export class DestinationStack extends SnapcourierStack {
  readonly tamperingRules: Rule[];
  constructor(scope: Construct, id: string, props: DestinationStackProps) {
    const c = props.config;
    const d = c.destinations.find((x) => x.account === props.account);
    if (!d) throw new Error(`destination account ${props.account} is not in the config`);
    const regions = [c.source.region, ...d.regions.map((r) => r.region).filter((r) => r !== c.source.region)];
    // The keys each run uses, omitted ones resolved to the stack-created key's alias.
    const resolved = (props.runs[0]?.input as { destination?: Config["destinations"][number] } | undefined)
      ?.destination;
    const keys = [
      ...(resolved?.copy_in_kms_key ? [resolved.copy_in_kms_key] : []),
      ...(resolved?.regions ?? []).flatMap((r) => (r.kms_key ? [r.kms_key] : [])),
    ];
    const permissions: Scope = {
      namespace: c.namespace,
      engines: engines(c),
      account: d.account,
      regions,
      sourceAccount: c.source.account,
      sourceRegion: c.source.region,
      redshiftCopyRegions: [],
      redshiftCopyAutomated: false,
      destinationKeys: [...new Set(keys)],
      stateMachineName: `snapcourier-${c.namespace}-destination`,
    };
    super(
      scope,
      id,
      "destination",
      ["copy_in_destination", "cross_region_copy", "delete"],
      permissions,
      props,
    );
    const key = props.stackKeyRegions.includes(c.source.region)
      ? destinationKey(this, "CopyKey", c.namespace, c.source.region, props.vault)
      : undefined;
    // The vault's tampering reports (the SNS target lets EventBridge use the topic's key).
    const vaultKeys = [...(key ? [key.keyId] : []), ...namedKeyIds(c, d.account, c.source.region)];
    this.tamperingRules = addTamperingRules(this, c.namespace, vaultKeys, {
      topic: this.topic,
      otherRegions: regions.filter((r) => r !== c.source.region),
    });
  }
}
