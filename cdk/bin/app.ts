// The CDK app: `npx cdk synth` (or `npx tsx bin/app.ts`) in cdk/. The config file comes from
// context `config` (-c config=PATH) or SNAPCOURIER_CONFIG, default ../examples/snapcourier.yaml.
// SNAPCOURIER_TEMPLATES=1 makes templates that take the Lambda code from S3 parameters, and
// SNAPCOURIER_KEY_POLICY_OUT=FILE also writes the source keys' policy statements there, and
// SNAPCOURIER_SCP_OUT=FILE the service control policy for the destination accounts
// (`make templates` sets all three).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { buildStacks, optionsFrom } from "../lib/app";
import { ConfigError } from "../lib/config";
import { sourceKeyPolicyStatements } from "../lib/stacks";
import { SCP_MAX_CHARS, serviceControlPolicy } from "../lib/vault";

const app = new App();
try {
  const built = buildStacks(app, optionsFrom(app, join(__dirname, "..")));
  app.synth();
  const out = process.env.SNAPCOURIER_KEY_POLICY_OUT;
  if (out) {
    writeFileSync(out, `${JSON.stringify(sourceKeyPolicyStatements(built.loaded.config, built.loaded.inputs.engines), null, 2)}\n`);
  }
  const scpOut = process.env.SNAPCOURIER_SCP_OUT;
  if (scpOut) {
    // Minified: AWS counts every character of an SCP, whitespace included.
    const scp = JSON.stringify(serviceControlPolicy(built.loaded.config, built.loaded.inputs.vault));
    if (scp.length > SCP_MAX_CHARS) {
      throw new Error(`the service control policy is ${scp.length} characters, more than AWS's ${SCP_MAX_CHARS}: shorten vault.deploy_roles or name fewer keys`);
    }
    writeFileSync(scpOut, `${scp}\n`);
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`error [ConfigInvalid]: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
