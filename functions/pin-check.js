'use strict';
/*
 * The line's PIN check (callmask:pinCheck function): a protected Twilio Function, node22 runtime.
 *
 * The flow's TwiML Redirect widget sends the call here. The first request answers with a <Gather> that
 * says the greeting and collects the PIN; Voice posts the digits back here (step=check); a wrong PIN is
 * asked again up to attemptsPerCall times, then the answer redirects the call to the flow's webhook with
 * FlowEvent=return and only a verdict: ok (with the PIN's label), bad, locked or noinput. Studio never
 * sees a digit.
 *
 * The PIN guard (callmask:pinGuard) counts failures per caller in a Sync Map: lockAfter failures within
 * windowMinutes lock the caller for lockMinutes (doubling on each repeat within a day, up to 24 h); a
 * locked caller gets `locked` without a PIN check, and attempts then are not counted; a correct PIN
 * clears the caller's count. Items are keyed by a keyed hash of the caller and written with If-Match, so
 * concurrent calls never lose a count. If Sync cannot be read or written, no PIN is accepted.
 *
 * It never logs, and never throws with the request: a Function error lands in Twilio's Debugger with
 * its request parameters, the digits among them. Every failure answers `bad` (fail closed), or hangs up
 * when it cannot even find the way back to the flow.
 */
const crypto = require('crypto');

// Filled in when callmask deploys the Function (infra/callmask/pin_function.py): the line's settings and
// its PIN digests, never a PIN. As committed it holds no digest, so it refuses every PIN.
const LINE = {"digests": []};

const ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;
const FLOW_SID = /^FW[0-9a-fA-F]{32}$/;
const STUDIO_WEBHOOKS = 'https://webhooks.twilio.com/v1/Accounts';

function scrypt(digits, salt, kdf) {
  return new Promise((resolve, reject) => {
    crypto.scrypt(digits, salt, kdf.keylen, {N: kdf.N, r: kdf.r, p: kdf.p, maxmem: kdf.maxmem},
      (error, key) => (error ? reject(new Error('scrypt failed')) : resolve(key)));
  });
}

/* The label of the PIN these digits are, or null. Every digest is compared, in constant time. */
async function matchingLabel(line, salt, digits) {
  if (!new RegExp(`^[0-9]{${line.pinLength}}$`).test(digits) || !salt || !line.digests.length) {
    return null;
  }
  const key = await scrypt(digits, Buffer.from(salt, 'base64'), line.kdf);
  let found = null;
  for (const {label, digest} of line.digests) {
    const expected = Buffer.from(digest, 'base64');
    if (expected.length === key.length && crypto.timingSafeEqual(expected, key) && found === null) {
      found = label;
    }
  }
  return found;
}

/* The flow's webhook for this call, from signed request parameters only. */
function flowWebhook(event) {
  if (!ACCOUNT_SID.test(event.AccountSid || '') || !FLOW_SID.test(event.flowSid || '')) {
    throw new Error('not a call from the line\'s flow');
  }
  return `${STUDIO_WEBHOOKS}/${event.AccountSid}/Flows/${event.flowSid}`;
}

/*
 * A query string with its parameters in sorted order. Twilio is reported to send a webhook to the URL with
 * its parameters sorted while signing the URL as written; sorted, the two are the same, so a protected
 * Function's signature check passes either way.
 */
function sortedQuery(parameters) {
  const query = new URLSearchParams(parameters);
  query.sort();
  return query.toString();
}

function verdictUrl(event, verdict, extra = {}) {
  return `${flowWebhook(event)}?${sortedQuery({FlowEvent: 'return', verdict, ...extra})}`;
}


// ---- the PIN guard ----
const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const ALL_CALLERS_WINDOW_MS = 60 * MINUTE_MS;  // alertAfter counts failures across all callers per hour
const SYNC_TIMEOUT_MS = 2500;    // one Sync request; slower than this counts as Sync being down
const ALERT_TIMEOUT_MS = 1500;   // the longest an alert may delay the caller's answer
const CONFLICT_RETRIES = 10;     // If-Match conflicts with concurrent calls before giving up (fail closed)
const CONFLICT_PAUSE_MS = 20;
const ALL_CALLERS = 'all-callers';
const E164 = /^\+[1-9][0-9]{7,14}$/;

class GuardUnavailable extends Error {}

/* Withheld, blocked or malformed caller IDs ("anonymous", "+266696687", "") are one caller. */
function callerOf(event) {
  const from = typeof event.From === 'string' ? event.From : '';
  return E164.test(from) && from !== '+266696687' ? from : 'anonymous';
}

function maskedCaller(caller) {
  if (caller === 'anonymous') {
    return caller;
  }
  if (caller.length <= 7) {
    return '*'.repeat(caller.length);
  }
  return caller.slice(0, 5) + '*'.repeat(caller.length - 7) + caller.slice(-2);
}

/* The Sync item key of a caller: a keyed hash (the stack's salt is the key), never the number in clear. */
function callerKey(salt, caller) {
  return 'caller-' + crypto.createHmac('sha256', Buffer.from(salt, 'base64')).update(`caller:${caller}`)
    .digest('hex').slice(0, 40);
}

/* A Sync Map of counters, every change a read-modify-write guarded by If-Match. */
class SyncCounters {
  constructor(map) {
    this.map = map;
  }

  async read(key) {
    try {
      const item = await this.map.syncMapItems(key).fetch();
      return {data: item.data, revision: item.revision};
    } catch (error) {
      if (error && error.status === 404) {
        return null;
      }
      throw new GuardUnavailable('Sync read failed');
    }
  }

  /* change(data or null) -> {data, ttlSeconds} or null (nothing to write); returns what was written.
   * `known`: the item as just read (undefined: read it first). */
  async mutate(key, change, known = undefined) {
    for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt += 1) {
      const current = attempt === 0 && known !== undefined ? known : await this.read(key);
      const next = change(current ? current.data : null);
      if (next === null) {
        return current ? current.data : null;
      }
      try {
        if (current) {
          await this.map.syncMapItems(key).update({data: next.data, itemTtl: next.ttlSeconds, ifMatch: current.revision});
        } else {
          await this.map.syncMapItems.create({key, data: next.data, itemTtl: next.ttlSeconds});
        }
        return next.data;
      } catch (error) {
        // 412: someone changed it since we read it; 409: someone created it since we looked. Read again,
        // after a short random pause so that concurrent calls stop colliding.
        if (!error || (error.status !== 412 && error.status !== 409)) {
          throw new GuardUnavailable('Sync write failed');
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * CONFLICT_PAUSE_MS * (attempt + 1)));
      }
    }
    throw new GuardUnavailable('too many concurrent changes');
  }
}

function ttlSeconds(until, now) {
  return Math.max(1, Math.ceil((until - now) / 1000));
}

/* A caller's item after one more failure: counted in its window, or a lockout (doubling on a repeat). */
function afterFailure(policy, data, caller, now) {
  const windowMs = policy.windowMinutes * MINUTE_MS;
  const item = data ? {...data} : {caller: maskedCaller(caller), failures: 0, windowStart: now, lockouts: 0,
    lockedUntil: 0};
  if (item.lockedUntil > now) {
    return {item, event: null, ttl: ttlSeconds(item.lockedUntil + DAY_MS, now)};  // locked meanwhile: not counted
  }
  if (now - item.windowStart >= windowMs) {
    item.failures = 0;
    item.windowStart = now;
  }
  item.failures += 1;
  let event = null;
  if (item.failures >= policy.lockAfter) {
    const repeat = item.lockedUntil && now - item.lockedUntil < DAY_MS ? item.lockouts : 0;
    item.lockouts = repeat + 1;
    item.lockedUntil = now + Math.min(policy.lockMinutes * MINUTE_MS * 2 ** repeat, DAY_MS);
    item.lockedFailures = item.failures;
    item.failures = 0;
    item.windowStart = item.lockedUntil;
    event = 'caller-locked';
  }
  // Kept while it counts, while it locks and for a day after a lockout (so that a repeat doubles).
  const until = Math.max(item.windowStart + windowMs, item.lockedUntil ? item.lockedUntil + DAY_MS : 0);
  return {item, event, ttl: ttlSeconds(until, now)};
}

function afterAnyFailure(policy, data, now) {
  const item = data && now - data.windowStart < ALL_CALLERS_WINDOW_MS ? {...data} :
    {failures: 0, windowStart: now, alerted: false};
  item.failures += 1;
  const event = item.failures >= policy.alertAfter && !item.alerted ? 'failures-across-callers' : null;
  item.alerted = item.alerted || event !== null;
  return {item, event, ttl: ttlSeconds(item.windowStart + ALL_CALLERS_WINDOW_MS, now)};
}

class PinGuard {
  constructor(policy, counters, salt, alert, clock = Date.now) {
    this.policy = policy;
    this.counters = counters;
    this.salt = salt;
    this.alert = alert;
    this.clock = clock;
  }

  /* The caller's item as it is now (null: none), to hand to `failed` or `succeeded`. */
  async look(caller) {
    return this.counters.read(callerKey(this.salt, caller));
  }

  /* The moment the caller's lockout ends, or 0 when they may try a PIN. */
  lockedUntil(current) {
    const until = current && current.data ? Number(current.data.lockedUntil) || 0 : 0;
    return until > this.clock() ? until : 0;
  }

  /* One wrong PIN: counted (the caller's count and the count across callers, side by side); returns the
   * lockout's end when this failure (or a concurrent one) locked them. `current`: the caller's item as read. */
  async failed(caller, current) {
    const now = this.clock();
    let outcome = null;
    let across = null;
    // Both settle before the answer (a Function's work ends with its answer), then any failure counts.
    const [counted, countedAcross] = await Promise.allSettled([
      this.counters.mutate(callerKey(this.salt, caller), (data) => {
        outcome = afterFailure(this.policy, data, caller, now);
        return {data: outcome.item, ttlSeconds: outcome.ttl};
      }, current),
      this.counters.mutate(ALL_CALLERS, (data) => {
        across = afterAnyFailure(this.policy, data, now);
        return {data: across.item, ttlSeconds: across.ttl};
      }),
    ]);
    const failed = [counted, countedAcross].find((result) => result.status === 'rejected');
    if (failed) {
      throw failed.reason;
    }
    const item = counted.value;
    const alerts = [];
    if (outcome.event) {
      alerts.push({event: outcome.event, caller: maskedCaller(caller), failures: item.lockedFailures,
        lockouts: item.lockouts, lockedUntil: new Date(item.lockedUntil).toISOString()});
    }
    if (across.event) {
      alerts.push({event: across.event, failures: across.item.failures, windowMinutes: ALL_CALLERS_WINDOW_MS / MINUTE_MS});
    }
    await Promise.all(alerts.map((alert) => this.alert({...alert, at: new Date(now).toISOString()})));
    return item.lockedUntil > now ? item.lockedUntil : 0;
  }

  /* A correct PIN: the caller's count and lockout history are cleared. A write, not a delete, so that a
   * Map that is gone or unwritable refuses the PIN rather than looking like a caller with no count. */
  async succeeded(caller, current) {
    const now = this.clock();
    await this.counters.mutate(callerKey(this.salt, caller), () => ({ttlSeconds: 60,
      data: {caller: maskedCaller(caller), failures: 0, windowStart: now, lockouts: 0, lockedUntil: 0}}), current);
  }
}

/* POSTs one alert as JSON to the stack's alertUrl; never longer than ALERT_TIMEOUT_MS, never throws. */
function alertSender(url, stack, timeoutMs = ALERT_TIMEOUT_MS) {
  if (!url) {
    return async () => {};
  }
  return async (alert) => {
    try {
      await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({source: 'callmask', stack, ...alert}), signal: AbortSignal.timeout(timeoutMs)});
    } catch (error) {
      // An alert that cannot be delivered must not change the caller's answer.
    }
  };
}

/* The guard of this deployment, or null when the line has none (pinGuard.enabled false). */
function guardOf(line, context, event, clock) {
  if (!line.guard) {
    return null;
  }
  const names = ['SYNC_SERVICE_SID', 'SYNC_MAP_SID', 'GUARD_KEY_SID', 'GUARD_KEY_SECRET'];
  if (names.some((name) => !context[name]) || !context.PIN_SALT || !ACCOUNT_SID.test(event.AccountSid || '')) {
    throw new GuardUnavailable('the guard is not configured');
  }
  const client = new Twilio.Twilio(context.GUARD_KEY_SID, context.GUARD_KEY_SECRET,
    {accountSid: event.AccountSid, timeout: SYNC_TIMEOUT_MS, autoRetry: false});
  if (context.CALLMASK_TWILIO_BASE_URL) {
    client.sync.baseUrl = context.CALLMASK_TWILIO_BASE_URL;  // local runs only: the local Twilio's Sync
  }
  const map = client.sync.v1.services(context.SYNC_SERVICE_SID).syncMaps(context.SYNC_MAP_SID);
  return new PinGuard(line.guard, new SyncCounters(map), context.PIN_SALT,
    alertSender(context.ALERT_URL, line.stack), clock);
}

// ---- the call ----
function gather(line, context, event, attempt, prompt) {
  const twiml = new Twilio.twiml.VoiceResponse();
  const action = new URL(`https://${context.DOMAIN_NAME}${context.PATH}`);
  action.search = sortedQuery({step: 'check', flowSid: event.flowSid, attempt: String(attempt)});
  flowWebhook(event);  // before anything is said: the way back exists
  const gathering = twiml.gather({input: 'dtmf', numDigits: line.pinLength, finishOnKey: '#',
    timeout: line.gatherTimeout, action: action.toString(), method: 'POST'});
  gathering.say({voice: line.voice, language: line.language}, prompt);
  // A gather that hears nothing falls through to the next verb.
  twiml.redirect({method: 'POST'}, verdictUrl(event, 'noinput'));
  return twiml;
}

function verdict(event, name, extra = {}) {
  const twiml = new Twilio.twiml.VoiceResponse();
  twiml.redirect({method: 'POST'}, verdictUrl(event, name, extra));
  return twiml;
}

async function greet(line, context, event, clock) {
  const guard = guardOf(line, context, event, clock);
  if (guard && guard.lockedUntil(await guard.look(callerOf(event)))) {
    return verdict(event, 'locked');
  }
  return gather(line, context, event, 1, line.greeting);
}

function attemptOf(event, line) {
  const attempt = Number.parseInt(event.attempt, 10);
  return attempt >= 1 && attempt <= (line.attemptsPerCall || 1) ? attempt : 1;
}

async function checkPin(line, context, event, clock) {
  const digits = typeof event.Digits === 'string' ? event.Digits : '';
  if (digits === '') {
    return verdict(event, 'noinput');
  }
  const attempt = attemptOf(event, line);
  const guard = guardOf(line, context, event, clock);
  const caller = callerOf(event);
  const current = guard ? await guard.look(caller) : null;
  if (guard && guard.lockedUntil(current)) {
    return verdict(event, 'locked');  // not checked, not counted
  }
  const label = await matchingLabel(line, context.PIN_SALT, digits);
  if (label !== null) {
    if (guard) {
      await guard.succeeded(caller, current);
    }
    return verdict(event, 'ok', {label, attempt: String(attempt)});
  }
  if (guard && await guard.failed(caller, current)) {
    return verdict(event, 'locked', {attempt: String(attempt)});
  }
  if (attempt < (line.attemptsPerCall || 1)) {
    return gather(line, context, event, attempt + 1, line.retryPrompt);
  }
  return verdict(event, 'bad', {attempt: String(attempt)});
}

function failClosed(event, reason) {
  const twiml = new Twilio.twiml.VoiceResponse();
  try {
    twiml.redirect({method: 'POST'}, verdictUrl(event, 'bad', reason ? {reason} : {}));
  } catch (error) {
    twiml.hangup();
  }
  return twiml;
}

/* `clock`: milliseconds now (tests move time; Twilio's runtime calls answer without it). */
async function answer(line, context, event, clock = Date.now) {
  try {
    return event.step === 'check' ? await checkPin(line, context, event, clock) : await greet(line, context, event, clock);
  } catch (error) {
    // The error is dropped, unlogged: it may carry the request. A guard that cannot count (Sync down, slow,
    // refusing the key) is said in the verdict.
    return failClosed(event, error instanceof GuardUnavailable ? 'guard-unavailable' : null);
  }
}

exports.handler = function handler(context, event, callback) {
  answer(LINE, context, event || {}).then((twiml) => callback(null, twiml), () => callback(null, failClosed({})));
};
exports.answer = answer;
exports.internals = {alertSender, callerKey, maskedCaller};
