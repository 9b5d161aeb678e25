// Builds the stacks of one deployment from its config file.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { App, BootstraplessSynthesizer, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { loadConfig, type Loaded } from "./config";
import { DestinationRegionStack, DestinationStack, SourceStack } from "./stacks";
import { acknowledgeFindings } from "./nag";

export interface AppOptions {
  /** The snapcourier config file (YAML or JSON). */
  config: string;
  /** Directory with one subdirectory per step holding its `bootstrap` binary; absent for
   * templates (`make templates`), whose functions take their code from S3 parameters. */
  lambdaDir?: string;
  /** The `snapcourier` binary (prints each schedule's input). */
  snapcourierBin: string;
}

export interface Built {
  loaded: Loaded;
  source: SourceStack;
  destinations: DestinationStack[];
  /** Per destination account, one stack per region other than the source region. */
  regionStacks: DestinationRegionStack[];
}

/** Stack ids: snapcourier-<namespace>-source and snapcourier-<namespace>-destination-<account>. */
export function buildStacks(app: App, options: AppOptions): Built {
  const loaded = loadConfig(options.config, options.snapcourierBin);
  const { config, inputs } = loaded;
  const ns = config.namespace;
  // Templates for deploying without CDK need no bootstrap stack (they hold no assets).
  const synth = options.lambdaDir === undefined ? { synthesizer: new BootstraplessSynthesizer() } : {};
  const source = new SourceStack(app, `snapcourier-${ns}-source`, {
    ...synth,
    env: { account: config.source.account, region: config.source.region },
    description: `snapcourier ${ns}: source side (takes, shares and expires snapshots)`,
    config,
    lambdaDir: options.lambdaDir,
    runs: inputs.source,
    regions: inputs.source_regions,
    engines: inputs.engines,
    deployedRuns: inputs.deployed_runs.source,
    exportBucket: inputs.export_bucket,
  });
  const regionStacks: DestinationRegionStack[] = [];
  const destinations = inputs.destinations.map((d) => {
    const stack = new DestinationStack(app, `snapcourier-${ns}-destination-${d.account}`, {
      ...synth,
      env: { account: d.account, region: config.source.region },
      description: `snapcourier ${ns}: destination ${d.account} (copies in, across regions, expires; the vault's guardrails)`,
      config,
      account: d.account,
      stackKeyRegions: d.stack_key_regions,
      lambdaDir: options.lambdaDir,
      runs: d.runs,
      regions: d.regions,
      engines: inputs.engines,
      deployedRuns: inputs.deployed_runs.destination,
      exportBucket: inputs.export_bucket,
      vault: inputs.vault,
      vaults: d.vaults,
      drill: d.drill,
    });
    for (const region of d.regions.filter((r) => r !== config.source.region)) {
      // The id keeps its first name ("-keys-"): renaming it would replace the stack, and a new
      // stack could not create the alias that the retained key of the old one still holds.
      const regional = new DestinationRegionStack(app, `snapcourier-${ns}-destination-${d.account}-keys-${region}`, {
        ...synth,
        env: { account: d.account, region },
        description: `snapcourier ${ns}: destination ${d.account} in ${region} (the copy key where the config names none; ${d.vaults.some((v) => v.region === region) ? "the vault bucket; " : ""}the vault's tampering rules)`,
        config,
        account: d.account,
        region,
        createKey: d.stack_key_regions.includes(region),
        vault: inputs.vault,
        vaults: d.vaults,
      });
      // Deployed first: the first run copies into the region with its key.
      stack.addDependency(regional);
      regionStacks.push(regional);
    }
    return stack;
  });
  for (const stack of [source, ...destinations, ...regionStacks]) acknowledgeFindings(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks());
  return { loaded, source, destinations, regionStacks };
}

/** Options from context (-c key=value, cdk.json) or the environment, then the defaults. */
export function optionsFrom(app: App, cdkDir: string): AppOptions {
  let fileContext: Record<string, unknown> = {};
  try {
    fileContext = (JSON.parse(readFileSync(join(cdkDir, "cdk.json"), "utf8")) as {
      context?: Record<string, unknown>;
    }).context ?? {};
  } catch {
    // no cdk.json: defaults below
  }
  const pick = (key: string, env: string, fallback: string): string => {
    const fromApp = app.node.tryGetContext(key) as unknown;
    const value = process.env[env] ?? (typeof fromApp === "string" ? fromApp : undefined) ?? fileContext[key];
    return resolve(cdkDir, typeof value === "string" ? value : fallback);
  };
  // SNAPCOURIER_TEMPLATES=1: templates whose functions take their code from S3 parameters.
  const templates = process.env.SNAPCOURIER_TEMPLATES === "1" || app.node.tryGetContext("templates") === "true";
  return {
    config: pick("config", "SNAPCOURIER_CONFIG", "../examples/snapcourier.yaml"),
    lambdaDir: templates ? undefined : pick("lambdaDir", "SNAPCOURIER_LAMBDA_DIR", "../target/lambda"),
    snapcourierBin: pick("snapcourierBin", "SNAPCOURIER_BIN", "../target/debug/snapcourier"),
  };
}
