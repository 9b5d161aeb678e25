// The CDK app: `npx cdk synth` (or `npx tsx bin/app.ts`) in cdk/. The config file comes from
// context `config` (-c config=PATH) or SNAPCOURIER_CONFIG, default ../examples/snapcourier.yaml.
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { buildStacks, optionsFrom } from "../lib/app";
import { ConfigError } from "../lib/config";

const app = new App();
try {
  buildStacks(app, optionsFrom(app, join(__dirname, "..")));
  app.synth();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`error [ConfigInvalid]: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
