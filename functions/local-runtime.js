'use strict';
/*
 * One Function served by Twilio's own Functions runtime, as `twilio-run` serves it: the LocalDevelopmentServer
 * of @twilio/runtime-handler (`/dev`), which builds the real `context` (DOMAIN_NAME, PATH, the Environment's
 * variables, getTwilioClient), the `Twilio` global (from this folder's pinned `twilio`) and the HTTP answer.
 * For the tests, `callmask simulate` and the local Twilio's calls.
 *
 *   FUNCTION_VARIABLES='{"PIN_SALT": "..."}' node local-runtime.js FUNCTION_FILE URL_PATH DOMAIN
 *
 * The Environment's variables come as JSON in FUNCTION_VARIABLES (never on the command line, which other
 * users of the machine can read). It listens on 127.0.0.1 (any free port), prints the port as its first
 * line, and serves until its standard input closes (the process that started it is gone).
 * The thin part is here: the runtime takes its settings from twilio-run's command line, so this file hands
 * it the one Function and its variables. (The runtime's getTwilioClient() talks to api.twilio.com: a
 * Function that calls Twilio would need its requests sent to the local Twilio; the PIN check calls none.)
 */
const path = require('path');
const fs = require('fs');
const {LocalDevelopmentServer} = require('@twilio/runtime-handler/dev');

const [file, urlPath, domain] = process.argv.slice(2);
const variables = JSON.parse(process.env.FUNCTION_VARIABLES || '{}');

const filePath = path.resolve(file);
const config = {
  baseDir: __dirname,  // where the runtime requires `twilio` from: the version the Build pins
  env: variables,
  port: 0,
  url: `https://${domain}`,
  detailedLogs: false,
  live: true,
  logs: false,
  legacyMode: false,
  appName: 'callmask',
  forkProcess: false,
  enableDebugLogs: false,
  routes: {
    functions: [{name: path.basename(urlPath), path: urlPath, access: 'protected', filePath,
      content: fs.readFileSync(filePath, 'utf8')}],
    assets: [],
  },
};

const runtime = new LocalDevelopmentServer(0, config);
const server = runtime.getApp().listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on('close', () => server.close(() => process.exit(0)));
process.stdin.resume();
