'use strict';
/*
 * The line's PIN check (callmask:pinCheck function): a protected Twilio Function, node22 runtime.
 *
 * The flow's TwiML Redirect widget sends the call here. The first request answers with a <Gather> that
 * says the greeting and collects the PIN; Voice posts the digits back here (step=check); the answer
 * redirects the call to the flow's webhook with FlowEvent=return and only a verdict: ok (with the PIN's
 * label), bad or noinput. Studio never sees a digit.
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

function verdictUrl(event, verdict, label) {
  return `${flowWebhook(event)}?${sortedQuery({FlowEvent: 'return', verdict, ...(label ? {label} : {})})}`;
}

function gatherPin(line, context, event) {
  const twiml = new Twilio.twiml.VoiceResponse();
  const action = new URL(`https://${context.DOMAIN_NAME}${context.PATH}`);
  action.search = sortedQuery({step: 'check', flowSid: event.flowSid});
  flowWebhook(event);  // before anything is said: the way back exists
  const gather = twiml.gather({input: 'dtmf', numDigits: line.pinLength, finishOnKey: '#',
    timeout: line.gatherTimeout, action: action.toString(), method: 'POST'});
  gather.say({voice: line.voice, language: line.language}, line.greeting);
  // A gather that hears nothing falls through to the next verb.
  twiml.redirect({method: 'POST'}, verdictUrl(event, 'noinput'));
  return twiml;
}

async function checkPin(line, context, event) {
  const twiml = new Twilio.twiml.VoiceResponse();
  const digits = typeof event.Digits === 'string' ? event.Digits : '';
  if (digits === '') {
    twiml.redirect({method: 'POST'}, verdictUrl(event, 'noinput'));
    return twiml;
  }
  const label = await matchingLabel(line, context.PIN_SALT, digits);
  twiml.redirect({method: 'POST'}, label === null ? verdictUrl(event, 'bad') : verdictUrl(event, 'ok', label));
  return twiml;
}

function failClosed(event) {
  const twiml = new Twilio.twiml.VoiceResponse();
  try {
    twiml.redirect({method: 'POST'}, verdictUrl(event, 'bad'));
  } catch (error) {
    twiml.hangup();
  }
  return twiml;
}

async function answer(line, context, event) {
  try {
    return event.step === 'check' ? await checkPin(line, context, event) : gatherPin(line, context, event);
  } catch (error) {
    return failClosed(event);  // the error is dropped, unlogged: it may carry the request
  }
}

exports.handler = function handler(context, event, callback) {
  answer(LINE, context, event || {}).then((twiml) => callback(null, twiml), () => callback(null, failClosed({})));
};
exports.answer = answer;
