// The CDK app: `npx cdk synth` (or `npx tsx bin/app.ts`) in cdk/. The config file comes from
// context `config` (-c config=PATH) or SNAPCOURIER_CONFIG, default ../examples/snapcourier.yaml.
// SNAPCOURIER_TEMPLATES=1 makes templates that take the Lambda code from S3 parameters, and
// SNAPCOURIER_KEY_POLICY_OUT=FILE also writes the source keys' policy statements there
// (`make templates` sets both).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { buildStacks, optionsFrom } from "../lib/app";
import { ConfigError } from "../lib/config";
import { sourceKeyPolicyStatements } from "../lib/stacks";

const app = new App();
try {
  const built = buildStacks(app, optionsFrom(app, join(__dirname, "..")));
  app.synth();
  const out = process.env.SNAPCOURIER_KEY_POLICY_OUT;
  if (out) {
    writeFileSync(out, `${JSON.stringify(sourceKeyPolicyStatements(built.loaded.config), null, 2)}\n`);
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`error [ConfigInvalid]: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
