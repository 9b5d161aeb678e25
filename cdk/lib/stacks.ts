// SourceStack (source account, source region) and DestinationStack (one per destination
// account, in the source region where its state machine runs, plus a DestinationKeyStack per
// other region whose KMS key it creates). Both: the Lambda steps from prebuilt binaries, the
// state machine from the ASL file, one EventBridge Scheduler schedule per config schedule with
// the exact `snapcourier run` input, an encrypted SNS topic for failure reports and alarms,
// the ExecutionsFailed alarm, a recovery-point (RPO heartbeat) alarm per schedule, and a
// dashboard. The source stack outputs the key policy statements its database keys need. When
// the config has drills, the destination stack also runs the restore drill: a sixth step and
// a second state machine (drill.asl.json) on a schedule of its own, with its alarms.
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
import {
  type Config,
  type EngineFacts,
  type ExportBucket,
  partitionOf,
  type ScheduledDrill,
  type ScheduledInput,
  type VaultBucket,
  type VaultInputs,
} from "./config";
import { Alias, type IKey } from "aws-cdk-lib/aws-kms";
import { type ExportResources, copyInRoleArns, exportBucket, vaultBucket } from "./buckets";
import { addTamperingRules, copyKeyGuardStatement, namedKeyArns } from "./vault";
import type { Rule } from "aws-cdk-lib/aws-events";
import { type Engine, type Scope, type Step, NAMESPACE_TAG, checkEngineActions, statementsFor } from "./permissions";

export const STATEMACHINE_DIR = join(__dirname, "..", "..", "statemachine");

/** The ASL placeholder each step's function ARN fills. */
export const PLACEHOLDERS: Record<Step, string> = {
  take: "TakeFunctionArn",
  share: "ShareFunctionArn",
  copy_in_destination: "CopyInDestinationFunctionArn",
  cross_region_copy: "CrossRegionCopyFunctionArn",
  delete: "DeleteFunctionArn",
  drill: "DrillFunctionArn",
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
  /** The regions this side writes to (`snapcourier inputs`: source_regions, or the
   * destination's regions, source region first). */
  regions: string[];
  /** The engine table (`snapcourier inputs`: engines). */
  engines: EngineFacts[];
  /** The source's export bucket (`snapcourier inputs`: export_bucket), when a scheduled
   * engine's transport is `s3-export`: the source stack creates it, the destinations read it. */
  exportBucket?: ExportBucket;
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
  /** The dashboard; a stack adds rows for what it adds (the destination's drill). */
  readonly dashboard: Dashboard;
  /** Encrypts the failure topic and the schedules' dead-letter queue. */
  protected readonly topicKey: Key;
  protected readonly alarmAction: SnsAction;
  protected readonly schedulerRole: Role;
  protected readonly deadLetters: Queue;
  protected readonly scheduleGroup: CfnScheduleGroup;

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
    this.topicKey = key;
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
    this.runParameters = props.runs.map((run) =>
      this.deployedRun(`Run-${run.schedule}`, `${props.deployedRuns}${run.schedule}`, run.input, {
        what: `schedule ${run.schedule}: its ${side} run`,
        description: `snapcourier ${ns} ${side}: the deployed run of schedule ${run.schedule} (the only input its functions accept)`,
        shorten: "shorten its include/exclude patterns or option_groups",
      }),
    );
    for (const step of steps) {
      this.functions[step] = this.stepFunction(
        step,
        side,
        permissions,
        props,
        props.runs.map((run) => run.schedule),
      );
    }

    // The state machine, from the ASL file as reviewed, with exactly its placeholders mapped.
    const substitutions: Record<string, string> = { [TOPIC_PLACEHOLDER]: this.topic.topicArn };
    for (const step of steps) {
      const fn = this.functions[step];
      if (fn) substitutions[PLACEHOLDERS[step]] = fn.functionArn;
    }
    // Executions end by themselves (a destination run stops at its deadline, before the next
    // run of its schedule); the timeout is the backstop that keeps a stuck execution from
    // blocking every later one of its schedule. One state machine serves every schedule of
    // the side: the longest interval.
    const timeoutSeconds = Math.max(1, ...props.runs.map((r) => r.execution_timeout_seconds));
    this.stateMachine = this.stateMachineFromAsl("", {
      name: stateMachineName,
      aslFile: `${side}.asl.json`,
      substitutions,
      timeoutSeconds,
      roleName: `snapcourier-${ns}-${side}-states`,
      roleDescription: `snapcourier ${ns} ${side}: the state machine invokes the steps and publishes failure reports`,
      functions: Object.values(this.functions),
    });

    // One schedule per config schedule, whose input is what `snapcourier run` builds.
    const schedulerRole = new Role(this, "SchedulerRole", {
      roleName: `snapcourier-${ns}-${side}-scheduler`,
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
      description: `snapcourier ${ns} ${side}: EventBridge Scheduler starts the state machine`,
    });
    this.schedulerRole = schedulerRole;
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
    this.deadLetters = deadLetters;
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
    this.scheduleGroup = new CfnScheduleGroup(this, "Schedules", { name: `snapcourier-${ns}-${side}` });
    for (const run of props.runs) {
      this.schedule(`Schedule-${run.schedule}`, `snapcourier ${ns} ${side}: schedule ${run.schedule}`, run.expression, run.input, this.stateMachine);
    }

    const alarmAction = new SnsAction(this.topic);
    this.alarmAction = alarmAction;
    const [failed, ...endedWithoutReport] = this.executionAlarms(this.stateMachine, "", `snapcourier-${ns}-${side}`, {
      failed: `A snapcourier ${side} execution failed; the failure topic carries the report naming each resource.`,
      // An execution that timed out or was stopped by hand sent no report of its own.
      timedOut: `A snapcourier ${side} execution timed out (it ran longer than its schedule's interval; look for a step that never returned). No failure report was sent: see the execution in ${stateMachineName}.`,
      aborted: `A snapcourier ${side} execution was aborted (stopped by hand or by a deployment); its schedule's databases may be unprotected until the next run. No failure report was sent: see the execution in ${stateMachineName}.`,
    }) as [Alarm, ...Alarm[]];
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

    this.dashboard = new Dashboard(this, "Dashboard", {
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


  /** A deployed run: `input`, exactly, in the SSM parameter `name` (advanced tier past 4 KB). */
  protected deployedRun(
    id: string,
    name: string,
    input: unknown,
    text: { what: string; description: string; shorten: string },
  ): StringParameter {
    const value = JSON.stringify(input);
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes > ADVANCED_PARAMETER_BYTES) {
      throw new Error(
        `${text.what} is ${bytes} bytes, more than an SSM parameter holds (${ADVANCED_PARAMETER_BYTES}); ${text.shorten}`,
      );
    }
    return new StringParameter(this, id, {
      parameterName: name,
      description: text.description,
      stringValue: value,
      tier: bytes > STANDARD_PARAMETER_BYTES ? ParameterTier.ADVANCED : ParameterTier.STANDARD,
    });
  }

  /**
   * A state machine from an ASL file as reviewed, with exactly its placeholders mapped (any
   * placeholder without a substitution, or substitution without a placeholder, fails the
   * synth), the timeout, logs (its own log group, no execution data) and tracing, and its own
   * role, which may invoke `functions` and publish failure reports to the topic. Construct ids
   * are `<idPrefix>StateMachine`, `<idPrefix>StateMachineRole` and `<idPrefix>StateMachineLogs`.
   */
  protected stateMachineFromAsl(
    idPrefix: string,
    o: {
      name: string;
      aslFile: string;
      substitutions: Record<string, string>;
      timeoutSeconds: number;
      roleName: string;
      roleDescription: string;
      functions: LambdaFunction[];
    },
  ): StateMachine {
    const aslPath = join(STATEMACHINE_DIR, o.aslFile);
    const asl = readFileSync(aslPath, "utf8");
    const used = placeholders(asl);
    const unmapped = used.filter((p) => !(p in o.substitutions));
    const unused = Object.keys(o.substitutions).filter((p) => !used.includes(p));
    if (unmapped.length > 0 || unused.length > 0) {
      throw new Error(
        `${aslPath}: placeholders ${JSON.stringify(used)} do not match the stack's substitutions ${JSON.stringify(Object.keys(o.substitutions).sort())} (unmapped: ${unmapped.join(", ") || "none"}; unused: ${unused.join(", ") || "none"})`,
      );
    }
    const logGroup = new LogGroup(this, `${idPrefix}StateMachineLogs`, {
      logGroupName: `/aws/vendedlogs/states/${o.name}`,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const definition = { ...JSON.parse(asl), TimeoutSeconds: o.timeoutSeconds };
    const role = new Role(this, `${idPrefix}StateMachineRole`, {
      roleName: o.roleName,
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: o.roleDescription,
    });
    const machine = new StateMachine(this, `${idPrefix}StateMachine`, {
      stateMachineName: o.name,
      role,
      definitionBody: DefinitionBody.fromString(JSON.stringify(definition, null, 2)),
      definitionSubstitutions: o.substitutions,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    for (const fn of o.functions) fn.grantInvoke(machine);
    // Publishing failure reports (explicit: grantPublish would add kms:GenerateDataKey*).
    machine.addToRolePolicy(
      new PolicyStatement({
        sid: "PublishFailureReports",
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
      }),
    );
    machine.addToRolePolicy(
      new PolicyStatement({
        sid: "EncryptFailureReportsViaSns",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [this.topicKey.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `sns.${this.region}.amazonaws.com` } },
      }),
    );
    return machine;
  }

  /** A schedule in the stack's group that starts `machine` with `input`, exactly; starts it
   * could not make go to the dead-letter queue (the scheduler role must may start `machine`). */
  protected schedule(id: string, description: string, expression: string, input: unknown, machine: StateMachine): CfnSchedule {
    return new CfnSchedule(this, id, {
      groupName: this.scheduleGroup.ref,
      description,
      scheduleExpression: expression,
      scheduleExpressionTimezone: "UTC",
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: machine.stateMachineArn,
        roleArn: this.schedulerRole.roleArn,
        input: JSON.stringify(input),
        retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
        deadLetterConfig: { arn: this.deadLetters.queueArn },
      },
    });
  }

  /** Alarms to the failure topic when an execution of `machine` fails, times out or is
   * aborted: `<idPrefix>Executions{Failed,TimedOut,Aborted}`, `<name>-executions-<what>`. */
  protected executionAlarms(
    machine: StateMachine,
    idPrefix: string,
    name: string,
    descriptions: { failed: string; timedOut: string; aborted: string },
  ): Alarm[] {
    return (
      [
        ["ExecutionsFailed", "failed", descriptions.failed],
        ["ExecutionsTimedOut", "timed-out", descriptions.timedOut],
        ["ExecutionsAborted", "aborted", descriptions.aborted],
      ] as const
    ).map(([metricName, suffix, description]) => {
      const alarm = new Alarm(this, `${idPrefix}${metricName}`, {
        alarmName: `${name}-executions-${suffix}`,
        alarmDescription: description,
        metric: machine.metric(metricName, { period: Duration.minutes(5), statistic: "Sum" }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new SnsAction(this.topic));
      return alarm;
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

  /** A step's function with its own log group and role: the step's statements, its own logs,
   * and the deployed runs named `runNames` (its side's schedules; the drill: `_drills`). */
  protected stepFunction(step: Step, side: Side, scope: Scope, props: SnapcourierStackProps, runNames: string[]): LambdaFunction {
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
    const statements = statementsFor(step, scope);
    checkEngineActions(step, scope.engines, props.engines, statements);
    for (const s of statements) role.addToPrincipalPolicy(s);
    // Its own log group only (a role given to a Function gets no log permission by itself):
    // without it there are no logs and no RecoveryPointAge metric.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn],
      }),
    );
    // Its deployed runs, and no other parameter.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "ReadDeployedRuns",
        actions: ["ssm:GetParameter"],
        resources: runNames.map(
          (run) => `arn:${this.partition}:ssm:${this.region}:${this.account}:parameter${props.deployedRuns}${run}`,
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

/**
 * The export bucket, when the engine table says a scheduled engine leaves the source account
 * through S3 (transport `s3-export`); `snapcourier inputs` prints it exactly then.
 */
function exportsThroughS3(props: SnapcourierStackProps): ExportBucket | undefined {
  const scheduled = engines(props.config);
  const exported = props.engines.filter((e) => e.transport === "s3-export" && scheduled.has(e.engine));
  if (exported.length === 0) return undefined;
  if (!props.exportBucket) {
    throw new Error(
      `${exported.map((e) => e.name).join(", ")} schedules export through S3, but \`snapcourier inputs\` printed no export_bucket: build the snapcourier binary and the CDK app from one checkout`,
    );
  }
  return props.exportBucket;
}

/** The vault buckets of one region, each encrypted with the region's copy key: the one this
 * stack creates (`created`), else the key the config names (or, failing both, the alias). The
 * key lets ElastiCache decrypt the copies through S3 (buckets.ts, vaultKeyStatement): in the
 * created key's policy, else in an output to add to the named key's policy. */
function addVaultBuckets(scope: Construct, vaults: VaultBucket[], region: string, created: Key | undefined, vault: VaultInputs): Bucket[] {
  return vaults
    .filter((v) => v.region === region)
    .map((v) => {
      let key: IKey;
      if (created) key = created;
      else if (v.kms_key && /:key\//.test(v.kms_key)) key = Key.fromKeyArn(scope, `VaultKey-${v.region}`, v.kms_key);
      else if (v.kms_key) key = Alias.fromAliasName(scope, `VaultKey-${v.region}`, `alias/${v.kms_key.split(":alias/")[1]}`);
      else throw new Error(`vault bucket ${v.bucket}: no KMS key for ${v.region} (snapcourier inputs resolves one)`);
      return vaultBucket(scope, `VaultBucket-${v.region}`, v, key, vault);
    });
}

export class SourceStack extends SnapcourierStack {
  /** The export bucket and its key, when a scheduled engine exports through S3. */
  readonly exports?: ExportResources;
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
      // `snapcourier inputs`: the source's regions include Redshift's copy region.
      redshiftCopyRegions: redshift.length > 0 ? props.regions.filter((r) => r !== c.source.region) : [],
      redshiftCopyKey: c.source.redshift_copy_kms_key ?? undefined,
      redshiftCopyAutomated: redshift.some(
        (s) => (s as { redshift?: { copy_automated?: boolean } }).redshift?.copy_automated === true,
      ),
      destinationKeys: [],
      stateMachineName: `snapcourier-${c.namespace}-source`,
      exportBucket: exportsThroughS3(props),
      cacheTags: c.schedules.some(
        (s) => s.engine === "elasticache" && (s as { opt_in_tag?: unknown }).opt_in_tag != null,
      ),
    };
    super(scope, id, "source", ["take", "share", "delete"], permissions, props);
    if (permissions.exportBucket) this.exports = exportBucket(this, c.namespace, permissions.exportBucket);
    const statements = sourceKeyPolicyStatements(c, props.engines);
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
 * (Redshift copies stay in the source account; ElastiCache's exports use the export key).
 */
export function sourceKeyPolicyStatements(config: Config, engines: EngineFacts[]): Record<string, unknown>[] {
  // Only engines whose destinations copy a shared snapshot read the source's keys (the engine
  // table says which: ElastiCache copies too, but exported objects, under the stack's own key).
  const copying = new Set(
    engines.filter((e) => e.copies_into_destination && e.transport === "snapshot-share").map((e) => e.engine),
  );
  if (!config.schedules.some((s) => copying.has(s.engine))) return [];
  const p = partitionOf(config.source.region);
  const accounts = config.destinations.map((d) => d.account);
  const roles = copyInRoleArns(p, config.namespace, accounts);
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
  /** The destination's vault buckets (`snapcourier inputs`); this stack creates its region's. */
  vaults: VaultBucket[];
}

/** A destination's stack in a region other than its main stack's: the copy key when the
 * config names none there, the vault bucket of the region (ElastiCache), and the vault's
 * tampering rules of the region, which forward to the failure topic's region. */
export class DestinationRegionStack extends Stack {
  readonly key?: Key;
  readonly rules: Rule[];
  readonly vaultBuckets: Bucket[];
  constructor(scope: Construct, id: string, props: DestinationRegionStackProps) {
    super(scope, id, props);
    const ns = props.config.namespace;
    Tags.of(this).add(NAMESPACE_TAG, ns);
    if (props.createKey) this.key = destinationKey(this, "CopyKey", ns, props.region, props.vault);
    this.vaultBuckets = addVaultBuckets(this, props.vaults, props.region, this.key, props.vault);
    const keys = [...(this.key ? [this.key.keyId] : []), ...namedKeyIds(props.config, props.account, props.region)];
    this.rules = addTamperingRules(this, ns, keys, { homeRegion: props.config.source.region }, this.vaultBuckets.length > 0);
  }
}

export interface DestinationStackProps extends SnapcourierStackProps {
  account: string;
  vault: VaultInputs;
  /** Regions whose key this destination's stacks create (`snapcourier inputs`). */
  stackKeyRegions: string[];
  /** The destination's vault buckets (`snapcourier inputs`): this stack creates the source
   * region's, the regional stacks the others'; the copy-in and delete steps use them all. */
  vaults: VaultBucket[];
  /** The destination's restore drill (`snapcourier inputs`), when the config has drills. */
  drill?: ScheduledDrill;
}

/** A destination's restore drill: its deployed run, the drill step, its state machine,
 * schedule and alarms. */
export interface DrillResources {
  run: StringParameter;
  function: LambdaFunction;
  stateMachine: StateMachine;
  schedule: CfnSchedule;
  /** Failed, timed-out and aborted executions; failed drills; no drill success in two intervals. */
  alarms: Alarm[];
}

/** `1209600` -> `14 days`, `43200` -> `12 hours`. */
function spelled(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? "" : "s"}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? "" : "s"}`;
  return `${seconds} seconds`;
}

export class DestinationStack extends SnapcourierStack {
  readonly tamperingRules: Rule[];
  /** The vault bucket of the source region, when the destination keeps copies there. */
  readonly vaultBuckets: Bucket[];
  /** Present only when the config has drills for this destination. */
  readonly drill?: DrillResources;
  constructor(scope: Construct, id: string, props: DestinationStackProps) {
    const c = props.config;
    const d = c.destinations.find((x) => x.account === props.account);
    if (!d) throw new Error(`destination account ${props.account} is not in the config`);
    const regions = props.regions;
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
      exportBucket: exportsThroughS3(props),
      vaults: props.vaults,
      drill: props.drill
        ? {
            regions: props.drill.input.regions,
            engines: new Set(props.drill.input.schedules.map((x) => x.engine)),
            validationFunction: props.drill.input.drills.validation_function ?? undefined,
          }
        : undefined,
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
    this.vaultBuckets = addVaultBuckets(this, props.vaults, c.source.region, key, props.vault);
    // The vault's tampering reports (the SNS target lets EventBridge use the topic's key).
    const vaultKeys = [...(key ? [key.keyId] : []), ...namedKeyIds(c, d.account, c.source.region)];
    this.tamperingRules = addTamperingRules(
      this,
      c.namespace,
      vaultKeys,
      { topic: this.topic, otherRegions: regions.filter((r) => r !== c.source.region) },
      this.vaultBuckets.length > 0,
    );
    if (props.drill) this.drill = this.addDrill(props, permissions, props.drill);
  }

  /**
   * The restore drill: its deployed run (`<deployedRuns>_drills`), the drill step, a state
   * machine of its own (drill.asl.json) started by a schedule in the stack's group, and alarms
   * on its executions, on failed drills (DrillSucceeded) and on no drill succeeding within two
   * drill intervals (DrillAge), with a dashboard row.
   */
  private addDrill(props: DestinationStackProps, permissions: Scope, drill: ScheduledDrill): DrillResources {
    const ns = props.config.namespace;
    const name = `snapcourier-${ns}-destination-drill`;
    const run = this.deployedRun(`Run-${drill.name}`, `${props.deployedRuns}${drill.name}`, drill.input, {
      what: "the restore drill's destination run",
      description: `snapcourier ${ns} destination: the deployed run of the restore drill (the only input the drill function accepts)`,
      shorten: "list fewer drill databases or shorten the drill networks",
    });
    const fn = this.stepFunction("drill", "destination", permissions, props, [drill.name]);
    this.functions.drill = fn;
    const stateMachine = this.stateMachineFromAsl("Drill", {
      name,
      aslFile: "drill.asl.json",
      substitutions: { [PLACEHOLDERS.drill]: fn.functionArn, [TOPIC_PLACEHOLDER]: this.topic.topicArn },
      // The restores' timeout plus an hour to delete them (computed by the CLI).
      timeoutSeconds: drill.execution_timeout_seconds,
      roleName: `${name}-states`,
      roleDescription: `snapcourier ${ns} destination: the restore drill's state machine invokes the drill step and publishes failure reports`,
      functions: [fn],
    });
    stateMachine.grantStartExecution(this.schedulerRole);
    const schedule = this.schedule(
      `Schedule-${drill.name}`,
      `snapcourier ${ns} destination: restore drill (a drill runs in each region when one is due)`,
      drill.expression,
      drill.input,
      stateMachine,
    );

    const executions = this.executionAlarms(stateMachine, "Drill", name, {
      failed: `A snapcourier ${ns} restore drill execution failed; the failure topic carries the report naming each database, region and stage. The drill deletes what it restored, and the next drill deletes anything left.`,
      timedOut: `A snapcourier ${ns} restore drill execution timed out (it ran longer than the drill timeout plus an hour); databases it restored may still be running until the next drill deletes them. No failure report was sent: see the execution in ${name}.`,
      aborted: `A snapcourier ${ns} restore drill execution was aborted (stopped by hand or by a deployment); the next drill deletes what it restored. No failure report was sent: see the execution in ${name}.`,
    });
    const dimensionsMap = { Deployment: ns, Side: "destination" };
    const drillMetric = (metricName: string, statistic: string, period: Duration) =>
      new Metric({ namespace: METRIC_NAMESPACE, metricName, dimensionsMap, statistic, period });
    // The drill function writes DrillSucceeded (1 or 0) for every drill that finishes.
    const failed = new Alarm(this, "DrillFailed", {
      alarmName: `${name}-failed`,
      alarmDescription:
        `A restore drill failed: a copy did not restore into an available database within the drill timeout, or the validation function rejected it. ` +
        `The failure topic carries the report; the drill function's log names each drill ("drill finished"), and \`snapcourier drill\` runs one by hand.`,
      metric: drillMetric("DrillSucceeded", "Minimum", Duration.hours(1)),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    failed.addAlarmAction(this.alarmAction);
    // DrillAge: seconds since the newest successful drill, written by every check (daily).
    const threshold = 2 * drill.every_seconds;
    const overdue = new Alarm(this, "DrillOverdue", {
      alarmName: `${name}-overdue`,
      alarmDescription:
        `No restore drill succeeded within two drill intervals (${spelled(threshold)}; drills.every is ${spelled(drill.every_seconds)}): ` +
        `the copies have not been proven restorable since. Look at the executions of the ${name} state machine ` +
        `(failed drills, or none due because none could start) and the drill function's log.`,
      metric: drillMetric("DrillAge", "Maximum", Duration.days(1)),
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    overdue.addAlarmAction(this.alarmAction);
    overdue.addOkAction(this.alarmAction);
    const alarms = [...executions, failed, overdue];

    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: "Restore drill alarms", alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Restore drill: seconds until the restored database was available (RTO)",
        left: [drillMetric("RestoreSeconds", "Maximum", Duration.hours(1)).with({ label: "restore seconds (maximum)" })],
        width: 12,
      }),
      new GraphWidget({
        title: "Restore drill: seconds since the newest successful drill",
        left: [drillMetric("DrillAge", "Maximum", Duration.days(1)).with({ label: "drill age" })],
        leftAnnotations: [{ value: threshold, label: "overdue alarm" }],
        width: 12,
      }),
    );
    return { run, function: fn, stateMachine, schedule, alarms };
  }
}
