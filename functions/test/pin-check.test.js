'use strict';
// The PIN-check Function under Node's test runner, its TwiML parsed (never grepped).
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const {spawn} = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const {test} = require('node:test');
const {DOMParser} = require('@xmldom/xmldom');

globalThis.Twilio = require('twilio');
const {answer} = require('../pin-check.js');

const FUNCTION_FILE = path.join(__dirname, '..', 'pin-check.js');
const ACCOUNT = `AC${'a'.repeat(32)}`;
const FLOW = `FW${'b'.repeat(32)}`;
const FLOW_WEBHOOK = `https://webhooks.twilio.com/v1/Accounts/${ACCOUNT}/Flows/${FLOW}`;
const SALT = crypto.randomBytes(16).toString('base64');
const FAST_KDF = {N: 1024, r: 8, p: 1, keylen: 32, maxmem: 16 * 1024 * 1024};  // the real cost: see pin-kdf.json
const PINS = {alice: '27184926', bob: '73920561'};

function digest(pin, kdf = FAST_KDF, salt = SALT) {
  const {N, r, p, maxmem} = kdf;
  return crypto.scryptSync(pin, Buffer.from(salt, 'base64'), kdf.keylen, {N, r, p, maxmem}).toString('base64');
}

function line(overrides = {}) {
  return {pinLength: 8, gatherTimeout: 15, voice: 'Polly.Matthew', language: 'en-GB',
    greeting: 'Enter your PIN & press pound.', kdf: FAST_KDF,
    digests: Object.entries(PINS).map(([label, pin]) => ({label, digest: digest(pin)})), ...overrides};
}

const CONTEXT = {DOMAIN_NAME: 'callmask-prod-1234-prod.twil.io', PATH: '/pin-check', PIN_SALT: SALT};
const CALL = {AccountSid: ACCOUNT, CallSid: `CA${'c'.repeat(32)}`, From: '+14155550123', flowSid: FLOW};

function parse(twiml) {
  const errors = [];
  const document = new DOMParser({onError: (level, message) => errors.push(`${level}: ${message}`)})
    .parseFromString(twiml.toString(), 'text/xml');
  assert.deepEqual(errors, []);
  const root = document.documentElement;
  assert.equal(root.tagName, 'Response');
  return Array.from(root.childNodes).filter((node) => node.nodeType === 1);
}

function verdictOf(verbs) {
  assert.equal(verbs.length, 1);
  assert.equal(verbs[0].tagName, 'Redirect');
  assert.equal(verbs[0].getAttribute('method'), 'POST');
  const url = new URL(verbs[0].textContent);
  assert.equal(`${url.origin}${url.pathname}`, FLOW_WEBHOOK);
  assert.equal(url.searchParams.get('FlowEvent'), 'return');
  return Object.fromEntries([...url.searchParams].filter(([key]) => key !== 'FlowEvent'));
}

async function check(digits, lineOverrides = {}, context = CONTEXT) {
  return parse(await answer(line(lineOverrides), context, {...CALL, step: 'check', Digits: digits}));
}

test('the first request says the greeting inside a gather of pinLength digits, then falls through to noinput', async () => {
  const verbs = parse(await answer(line(), CONTEXT, CALL));
  assert.deepEqual(verbs.map((verb) => verb.tagName), ['Gather', 'Redirect']);
  const [gather, fallThrough] = verbs;
  assert.equal(gather.getAttribute('input'), 'dtmf');
  assert.equal(gather.getAttribute('numDigits'), '8');
  assert.equal(gather.getAttribute('finishOnKey'), '#');
  assert.equal(gather.getAttribute('timeout'), '15');
  assert.equal(gather.getAttribute('method'), 'POST');
  const action = new URL(gather.getAttribute('action'));
  assert.equal(`${action.origin}${action.pathname}`, 'https://callmask-prod-1234-prod.twil.io/pin-check');
  assert.deepEqual(Object.fromEntries(action.searchParams), {step: 'check', flowSid: FLOW, attempt: '1'});
  const said = Array.from(gather.childNodes).filter((node) => node.nodeType === 1);
  assert.equal(said.length, 1);
  assert.equal(said[0].tagName, 'Say');
  assert.equal(said[0].getAttribute('voice'), 'Polly.Matthew');
  assert.equal(said[0].getAttribute('language'), 'en-GB');
  assert.equal(said[0].textContent, 'Enter your PIN & press pound.');
  assert.deepEqual(verdictOf([fallThrough]), {verdict: 'noinput'});
});

test('the right PIN is ok, with its label', async () => {
  assert.deepEqual(verdictOf(await check(PINS.bob)), {verdict: 'ok', label: 'bob', attempt: '1'});
  assert.deepEqual(verdictOf(await check(PINS.alice)), {verdict: 'ok', label: 'alice', attempt: '1'});
});

test('a wrong PIN, a PIN of another length or anything not digits is bad', async () => {
  for (const digits of ['27184927', '2718492', '271849260', '2718492a', '*2718492']) {
    assert.deepEqual(verdictOf(await check(digits)), {verdict: 'bad', attempt: '1'}, `digits ${digits}`);
  }
});

test('no digits is noinput', async () => {
  assert.deepEqual(verdictOf(await check('')), {verdict: 'noinput'});
  assert.deepEqual(verdictOf(parse(await answer(line(), CONTEXT, {...CALL, step: 'check'}))), {verdict: 'noinput'});
});

test('a revoked PIN is bad: only the digests decide', async () => {
  const withoutBob = line().digests.filter((entry) => entry.label !== 'bob');
  assert.deepEqual(verdictOf(await check(PINS.bob, {digests: withoutBob})).verdict, 'bad');
  assert.deepEqual(verdictOf(await check(PINS.alice, {digests: []})).verdict, 'bad');
});

test('digests made with another salt or other KDF parameters refuse the right PIN', async () => {
  assert.deepEqual(verdictOf(await check(PINS.alice, {}, {...CONTEXT, PIN_SALT: crypto.randomBytes(16).toString('base64')}))
    .verdict, 'bad');
  assert.deepEqual(verdictOf(await check(PINS.alice, {kdf: {...FAST_KDF, N: 2048}})).verdict, 'bad');
});

test('every failure inside the Function fails closed with bad, and nothing is logged', async () => {
  const logged = [];
  const saved = {};
  for (const method of ['log', 'info', 'warn', 'error', 'debug']) {
    saved[method] = console[method];
    console[method] = (...args) => logged.push(args.join(' '));
  }
  try {
    const broken = [
      [{}, {...CONTEXT, PIN_SALT: undefined}],  // the salt variable is missing
      [{digests: 'not a list'}, CONTEXT],
      [{digests: [{label: 'alice', digest: 42}]}, CONTEXT],
      [{kdf: {...FAST_KDF, N: 1000}}, CONTEXT],  // scrypt refuses an N that is not a power of 2
      [{kdf: undefined}, CONTEXT],
      [{pinLength: undefined}, CONTEXT],
    ];
    for (const [overrides, context] of broken) {
      assert.deepEqual(verdictOf(await check(PINS.alice, overrides, context)).verdict, 'bad',
        JSON.stringify(overrides));
    }
  } finally {
    Object.assign(console, saved);
  }
  assert.deepEqual(logged, []);
});

test('a request that is not from the line\'s flow hangs up: there is no way back to return a verdict', async () => {
  for (const event of [{...CALL, flowSid: undefined}, {...CALL, flowSid: 'FW123'}, {...CALL, AccountSid: 'x'},
    {...CALL, flowSid: `${FLOW}?FlowEvent=return&verdict=ok`}]) {
    for (const step of [undefined, 'check']) {
      const verbs = parse(await answer(line(), CONTEXT, {...event, step, Digits: PINS.alice}));
      assert.deepEqual(verbs.map((verb) => verb.tagName), ['Hangup'], JSON.stringify(event));
    }
  }
});

test('a label is returned URL-encoded, so it cannot add a parameter of its own', async () => {
  const digests = [{label: 'ops&verdict=ok', digest: digest(PINS.alice)}];
  const verbs = await check(PINS.alice, {digests});
  assert.deepEqual(verdictOf(verbs), {verdict: 'ok', label: 'ops&verdict=ok', attempt: '1'});
});

/* The Function served by Twilio's own Functions runtime (local-runtime.js), reached over HTTP as Voice does. */
async function runtime(file, variables) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'local-runtime.js'), file, CONTEXT.PATH,
    CONTEXT.DOMAIN_NAME], {stdio: ['pipe', 'pipe', 'inherit'], env: {...process.env,
    FUNCTION_VARIABLES: JSON.stringify(variables)}});
  const port = (await readline.createInterface({input: child.stdout})[Symbol.asyncIterator]().next()).value;
  return {
    async request(query, form) {
      const answer = await fetch(`http://127.0.0.1:${port}${CONTEXT.PATH}?${new URLSearchParams(query)}`,
        {method: 'POST', body: new URLSearchParams(form)});
      return {status: answer.status, contentType: answer.headers.get('content-type'), body: await answer.text()};
    },
    close: () => child.stdin.end(),
  };
}

test('in Twilio\'s Functions runtime, the committed Function (no digests) answers TwiML and refuses every PIN', async () => {
  const running = await runtime(FUNCTION_FILE, {PIN_SALT: SALT});
  try {
    const {flowSid, ...call} = CALL;
    const first = await running.request({flowSid}, call);
    assert.equal(first.status, 200);
    assert.match(first.contentType, /^text\/xml/);
    const [gather, fallThrough] = parse(first.body);
    assert.deepEqual([gather.tagName, fallThrough.tagName], ['Gather', 'Redirect']);
    // The runtime's context: the action is built from its DOMAIN_NAME and PATH.
    assert.equal(new URL(gather.getAttribute('action')).host, CONTEXT.DOMAIN_NAME);
    const second = await running.request({flowSid, step: 'check'}, {...call, Digits: PINS.alice});
    assert.deepEqual(verdictOf(parse(second.body)).verdict, 'bad');
  } finally {
    running.close();
  }
});

/* Every URL in the TwiML (Gather actions, Redirects), each query's keys in sorted order. */
function urlsIn(verbs) {
  return verbs.flatMap((verb) => [
    ...(verb.getAttribute('action') ? [verb.getAttribute('action')] : []),
    ...(verb.tagName === 'Redirect' ? [verb.textContent] : []),
    ...urlsIn(Array.from(verb.childNodes).filter((node) => node.nodeType === 1)),
  ]);
}

test('every URL handed to Twilio has its query parameters in sorted order (signature-safe)', async () => {
  const answers = [
    await answer(line(), CONTEXT, CALL),
    await answer(line(), CONTEXT, {...CALL, step: 'check', Digits: PINS.alice}),
    await answer(line(), CONTEXT, {...CALL, step: 'check', Digits: '11112222'}),
    await answer(line(), CONTEXT, {...CALL, step: 'check', Digits: ''}),
  ];
  const urls = answers.flatMap((twiml) => urlsIn(parse(twiml)));
  assert.equal(urls.length, 5);
  for (const url of urls) {
    const keys = [...new URL(url).searchParams.keys()];
    assert.ok(keys.length > 0, url);
    assert.deepEqual(keys, [...keys].sort(), `${url}: parameters out of order`);
  }
});
