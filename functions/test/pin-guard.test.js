'use strict';
// The PIN guard of the PIN-check Function under Node's test runner: its counters in Sync on the local Twilio
// (callmask local-twilio, every request checked against Twilio's Sync spec), reached with an API key made
// there, as the deployed Function reaches Twilio's Sync.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const {spawn} = require('node:child_process');
const {after, before, test} = require('node:test');
const {DOMParser} = require('@xmldom/xmldom');

// As Twilio's Functions runtime sets it: the module's exports spread into an object (not callable).
globalThis.Twilio = {...require('twilio')};
const {answer, internals} = require('../pin-check.js');

const PYTHON = process.env.CALLMASK_PYTHON || path.join(__dirname, '..', '..', '.venv', 'bin', 'python');
const FLOW = `FW${'b'.repeat(32)}`;
const SALT = crypto.randomBytes(16).toString('base64');
const FAST_KDF = {N: 1024, r: 8, p: 1, keylen: 32, maxmem: 16 * 1024 * 1024};
const PIN = '27184926';
const WRONG = '11112222';
const MINUTE = 60 * 1000;
const POLICY = {lockAfter: 5, windowMinutes: 15, lockMinutes: 15, alertAfter: 20};

let local;  // {process, baseUrl, account, token}
let accountSid;

function digest(pin) {
  const {N, r, p, maxmem} = FAST_KDF;
  return crypto.scryptSync(pin, Buffer.from(SALT, 'base64'), FAST_KDF.keylen, {N, r, p, maxmem}).toString('base64');
}

function line(guard = POLICY, attemptsPerCall = 3) {
  return {pinLength: 8, gatherTimeout: 15, voice: 'Polly.Matthew', language: 'en-GB', greeting: 'Enter your PIN.',
    retryPrompt: 'Try again.', attemptsPerCall, kdf: FAST_KDF, stack: 'prod', guard,
    digests: [{label: 'alice', digest: digest(PIN)}]};
}

async function twilio(method, url, form, headers = {}) {
  const auth = Buffer.from(`${local.account}:${local.token}`).toString('base64');
  const response = await fetch(`${local.baseUrl}${url}`, {method, body: form && new URLSearchParams(form),
    headers: {Authorization: `Basic ${auth}`, ...headers}});
  const body = response.status === 204 ? {} : await response.json();
  assert.ok(response.status < 300, `${method} ${url}: ${JSON.stringify(body)}`);
  return body;
}

/* A new Sync Service, Map and API key on the local Twilio: the variables a deployed Function gets. */
async function newGuard(extra = {}) {
  const service = await twilio('POST', '/v1/Services', {FriendlyName: 'callmask-prod PIN guard'},
    {'X-Twilio-Host': 'sync.twilio.com'});
  const map = await twilio('POST', `/v1/Services/${service.sid}/Maps`, {UniqueName: 'pin-guard'});
  const key = await twilio('POST', `/2010-04-01/Accounts/${local.account}/Keys.json`, {FriendlyName: 'guard'});
  return {DOMAIN_NAME: 'callmask-prod-1234.twil.io', PATH: '/pin-check', PIN_SALT: SALT,
    SYNC_SERVICE_SID: service.sid, SYNC_MAP_SID: map.sid, GUARD_KEY_SID: key.sid, GUARD_KEY_SECRET: key.secret,
    CALLMASK_TWILIO_BASE_URL: local.baseUrl, ...extra};
}

async function item(context, caller) {
  const key = internals.callerKey(SALT, caller);
  const url = `/v1/Services/${context.SYNC_SERVICE_SID}/Maps/${context.SYNC_MAP_SID}/Items/${key}`;
  const auth = Buffer.from(`${local.account}:${local.token}`).toString('base64');
  const response = await fetch(`${local.baseUrl}${url}`, {headers: {Authorization: `Basic ${auth}`}});
  return response.status === 404 ? null : (await response.json()).data;
}

function parse(twiml) {
  const document = new DOMParser().parseFromString(twiml.toString(), 'text/xml');
  return Array.from(document.documentElement.childNodes).filter((node) => node.nodeType === 1);
}

/* What the caller is answered: {verdict...} for a redirect to the flow, {gather: attempt, said} for a retry. */
function outcome(verbs) {
  if (verbs[0].tagName === 'Gather') {
    const action = new URL(verbs[0].getAttribute('action'));
    return {gather: action.searchParams.get('attempt'), said: verbs[0].textContent};
  }
  assert.equal(verbs[0].tagName, 'Redirect');
  const url = new URL(verbs[0].textContent);
  return Object.fromEntries([...url.searchParams].filter(([key]) => key !== 'FlowEvent'));
}

/* The caller keys `digits` at `attempt` (by default the call's last, so a wrong PIN gets a verdict). */
async function key(context, digits, {from = '+14155550123', attempt = '3', guard = POLICY, clock} = {}) {
  const event = {AccountSid: local.account, flowSid: FLOW, From: from, step: 'check', Digits: digits, attempt};
  return outcome(parse(await answer(line(guard), context, event, clock)));
}

async function greet(context, from = '+14155550123', clock = undefined) {
  const event = {AccountSid: local.account, flowSid: FLOW, From: from};
  return outcome(parse(await answer(line(), context, event, clock)));
}

before(async () => {
  const child = spawn(PYTHON, ['-m', 'callmask', 'local-twilio', '--port', '0'], {stdio: ['ignore', 'pipe', 'ignore']});
  const said = {};
  for await (const text of readline.createInterface({input: child.stdout})) {
    const match = text.match(/export (\w+)=(\S+)/);
    if (match) {
      said[match[1]] = match[2];
    }
    if (said.TWILIO_AUTH_TOKEN) {
      break;
    }
  }
  local = {process: child, baseUrl: said.CALLMASK_TWILIO_BASE_URL, account: said.TWILIO_ACCOUNT_SID,
    token: said.TWILIO_AUTH_TOKEN};
  accountSid = local.account;
  assert.ok(local.baseUrl && accountSid, 'the local Twilio did not start (make setup)');
});

after(() => local && local.process.kill());

test('a wrong PIN is asked again within the call, up to attemptsPerCall, then refused with the attempt', async () => {
  const context = await newGuard();
  assert.deepEqual(await key(context, WRONG, {from: '+14155550101', attempt: '1'}), {gather: '2', said: 'Try again.'});
  assert.deepEqual(await key(context, WRONG, {from: '+14155550101', attempt: '2'}), {gather: '3', said: 'Try again.'});
  assert.deepEqual(await key(context, WRONG, {from: '+14155550101', attempt: '3'}), {verdict: 'bad', attempt: '3'});
  assert.deepEqual(await key(context, PIN, {from: '+14155550102', attempt: '2'}),
    {verdict: 'ok', label: 'alice', attempt: '2'});
});

test('lockAfter failures lock the caller: then even the right PIN is locked, unchecked and uncounted', async () => {
  const context = await newGuard();
  const from = '+14155550103';
  for (let failure = 1; failure < POLICY.lockAfter; failure += 1) {
    assert.equal((await key(context, WRONG, {from, attempt: '3'})).verdict, 'bad');
  }
  assert.deepEqual(await key(context, WRONG, {from, attempt: '3'}), {verdict: 'locked', attempt: '3'});
  const locked = await item(context, from);
  assert.equal(locked.caller, '+1415*****03');
  assert.equal(locked.lockouts, 1);
  assert.deepEqual(await key(context, PIN, {from}), {verdict: 'locked'});
  assert.deepEqual(await key(context, WRONG, {from, attempt: '1'}), {verdict: 'locked'});
  assert.deepEqual(await greet(context, from), {verdict: 'locked'});  // told before a PIN is even asked for
  assert.deepEqual(await item(context, from), locked, 'attempts during a lockout are not counted');
  assert.equal((await key(context, PIN, {from: '+14155550104'})).verdict, 'ok', 'another caller is not affected');
});

test('a repeat lockout within a day doubles, up to 24 hours; after a quiet day it starts again at lockMinutes', async () => {
  const context = await newGuard();
  const from = '+14155550105';
  let now = Date.UTC(2026, 11, 3, 12);
  const lockFor = async () => {
    for (let failure = 0; failure < POLICY.lockAfter; failure += 1) {
      await key(context, WRONG, {from, clock: () => now});
    }
    const {lockedUntil} = await item(context, from);
    const minutes = (lockedUntil - now) / MINUTE;
    now = lockedUntil + MINUTE;
    return minutes;
  };
  const lockouts = [];
  for (let round = 0; round < 8; round += 1) {
    lockouts.push(await lockFor());
  }
  assert.deepEqual(lockouts, [15, 30, 60, 120, 240, 480, 960, 1440]);
  now += 24 * 60 * MINUTE;
  assert.equal(await lockFor(), 15);
});

test('failures outside the window are not added up; a correct PIN clears the count', async () => {
  const context = await newGuard();
  const from = '+14155550106';
  let now = Date.UTC(2026, 11, 3, 12);
  const clock = () => now;
  for (let failure = 0; failure < POLICY.lockAfter - 1; failure += 1) {
    await key(context, WRONG, {from, clock});
  }
  now += POLICY.windowMinutes * MINUTE;  // the window has passed: a new count starts
  assert.equal((await key(context, WRONG, {from, clock})).verdict, 'bad');
  assert.equal((await item(context, from)).failures, 1);
  for (let failure = 0; failure < POLICY.lockAfter - 2; failure += 1) {
    await key(context, WRONG, {from, clock});
  }
  assert.equal((await key(context, PIN, {from, clock})).verdict, 'ok');
  assert.equal((await item(context, from)).failures, 0);
  for (let failure = 0; failure < POLICY.lockAfter - 1; failure += 1) {
    assert.equal((await key(context, WRONG, {from, clock})).verdict, 'bad', 'counted from zero again');
  }
});

test('callers with a withheld or malformed caller ID are one caller, "anonymous"', async () => {
  const context = await newGuard();
  const froms = ['anonymous', '', 'Restricted', '+266696687', 'UNAVAILABLE'];
  for (let failure = 0; failure < POLICY.lockAfter; failure += 1) {
    await key(context, WRONG, {from: froms[failure]});
  }
  assert.equal((await item(context, 'anonymous')).caller, 'anonymous');
  assert.deepEqual(await greet(context, 'Unknown'), {verdict: 'locked'});
  assert.equal((await key(context, PIN, {from: '+14155550107'})).verdict, 'ok');
});

test('concurrent failures are all counted: each write is checked against the revision it read (If-Match)', async () => {
  const context = await newGuard();
  const from = '+14155550108';
  const guard = {...POLICY, lockAfter: 100, alertAfter: 1000};
  const verdicts = await Promise.all(Array.from({length: 12}, () => key(context, WRONG, {from, attempt: '3', guard})));
  assert.deepEqual(verdicts, Array(12).fill({verdict: 'bad', attempt: '3'}));
  assert.equal((await item(context, from)).failures, 12);
  assert.equal((await item(context, 'all-callers')), null, 'the across-callers count has its own key');
});

/* A server that answers every request the same way: Sync failing. */
async function failing(status) {
  const server = http.createServer((request, response) => {
    response.writeHead(status, {'Content-Type': 'application/json'});
    response.end(JSON.stringify({code: 20500, message: 'down', more_info: '', status}));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

test('when Sync fails, no PIN is accepted and the verdict says the guard was unavailable', async () => {
  const context = await newGuard();
  const down = await failing(503);
  const closed = await failing(500);
  const closedPort = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  try {
    for (const broken of [{CALLMASK_TWILIO_BASE_URL: `http://127.0.0.1:${down.address().port}`},
      {CALLMASK_TWILIO_BASE_URL: `http://127.0.0.1:${closedPort}`},  // nothing listens
      {GUARD_KEY_SECRET: 'not-the-secret'},  // Twilio answers 401
      {SYNC_MAP_SID: `MP${'0'.repeat(32)}`},  // the Map is gone
      {SYNC_SERVICE_SID: undefined}]) {  // not configured
      const where = {...context, ...broken};
      for (const digits of [PIN, WRONG]) {
        assert.deepEqual(await key(where, digits, {from: '+14155550109', attempt: '3'}),
          {verdict: 'bad', reason: 'guard-unavailable'}, JSON.stringify(broken));
      }
    }
  } finally {
    down.close();
  }
});

/* A receiver of alerts, as the stack's alertUrl. */
async function receiver() {
  const alerts = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      alerts.push({type: request.headers['content-type'], body: JSON.parse(body)});
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {alerts, url: `http://127.0.0.1:${server.address().port}/alerts`, close: () => server.close()};
}

test('a lockout and alertAfter failures across callers each POST one alert, with no digits in it', async () => {
  const alerts = await receiver();
  try {
    const context = await newGuard({ALERT_URL: alerts.url});
    const guard = {...POLICY, alertAfter: 7};
    for (let failure = 0; failure < 5; failure += 1) {
      await key(context, WRONG, {from: '+14155550110', guard});
    }
    for (let failure = 0; failure < 4; failure += 1) {
      await key(context, WRONG, {from: `+1415555012${failure}`, guard});
    }
    assert.deepEqual(alerts.alerts.map((alert) => alert.body.event), ['caller-locked', 'failures-across-callers']);
    const [locked, across] = alerts.alerts.map((alert) => alert.body);
    assert.equal(alerts.alerts[0].type, 'application/json');
    assert.deepEqual({...locked, lockedUntil: typeof locked.lockedUntil, at: typeof locked.at},
      {source: 'callmask', stack: 'prod', event: 'caller-locked', caller: '+1415*****10', failures: 5, lockouts: 1,
        lockedUntil: 'string', at: 'string'});
    assert.deepEqual({...across, at: undefined},
      {source: 'callmask', stack: 'prod', event: 'failures-across-callers', failures: 7, windowMinutes: 60, at: undefined});
    const text = JSON.stringify(alerts.alerts);
    for (const digits of [PIN, WRONG, '4155550110']) {
      assert.ok(!text.includes(digits), `an alert holds ${digits}`);
    }
  } finally {
    alerts.close();
  }
});

test('an alert receiver that never answers holds the answer no longer than the alert time-out', async () => {
  const silent = http.createServer(() => {});  // accepts, never answers
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const send = internals.alertSender(`http://127.0.0.1:${silent.address().port}/`, 'prod', 50);
    const started = Date.now();
    await send({event: 'caller-locked'});  // resolves (never throws) once its time-out passes
    assert.ok(Date.now() - started < 1000, 'the alert was awaited beyond its time-out');
  } finally {
    silent.closeAllConnections();
    silent.close();
  }
});
