// Builds the stacks of one deployment from its config file.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { loadConfig, type Loaded } from "./config";
import { DestinationStack, SourceStack } from "./stacks";
import { acknowledgeFindings } from "./nag";

export interface AppOptions {
  /** The snapcourier config file (YAML or JSON). */
  config: string;
  /** Directory with one subdirectory per step holding its `bootstrap` binary. */
  lambdaDir: string;
  /** The `snapcourier` binary (prints each schedule's input). */
  snapcourierBin: string;
}

export interface Built {
  loaded: Loaded;
  source: SourceStack;
  destinations: DestinationStack[];
}

/** Stack ids: snapcourier-<namespace>-source and snapcourier-<namespace>-destination-<account>. */
export function buildStacks(app: App, options: AppOptions): Built {
  const loaded = loadConfig(options.config, options.snapcourierBin);
  const { config, inputs } = loaded;
  const ns = config.namespace;
  const source = new SourceStack(app, `snapcourier-${ns}-source`, {
    env: { account: config.source.account, region: config.source.region },
    description: `snapcourier ${ns}: source side (takes, shares and expires snapshots)`,
    config,
    lambdaDir: options.lambdaDir,
    runs: inputs.source,
  });
  const destinations = inputs.destinations.map(
    (d) =>
      new DestinationStack(app, `snapcourier-${ns}-destination-${d.account}`, {
        env: { account: d.account, region: config.source.region },
        description: `snapcourier ${ns}: destination ${d.account} (copies in, across regions, expires)`,
        config,
        account: d.account,
        lambdaDir: options.lambdaDir,
        runs: d.runs,
      }),
  );
  for (const stack of [source, ...destinations]) acknowledgeFindings(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks());
  return { loaded, source, destinations };
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
  return {
    config: pick("config", "SNAPCOURIER_CONFIG", "../examples/snapcourier.yaml"),
    lambdaDir: pick("lambdaDir", "SNAPCOURIER_LAMBDA_DIR", "../target/lambda"),
    snapcourierBin: pick("snapcourierBin", "SNAPCOURIER_BIN", "../target/debug/snapcourier"),
  };
}
