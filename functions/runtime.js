'use strict';
/*
 * A stand-in for Twilio's Functions runtime, for the tests and `callmask simulate`: it loads one Function
 * (the file named on the command line) with the `Twilio` global the runtime provides, then answers each
 * request read from standard input, one JSON line {context, event}, with one JSON line
 * {status, contentType, body}, as Twilio's Functions gateway would answer the HTTP request.
 */
const readline = require('readline');

globalThis.Twilio = require('twilio');
const fn = require(require('path').resolve(process.argv[2]));

function invoke({context, event}) {
  return new Promise((resolve) => {
    const respond = (error, response) => {
      if (error) {
        resolve({status: 500, contentType: 'application/json', body: '{"message":"Function error"}'});
      } else if (response instanceof Twilio.twiml.VoiceResponse) {
        resolve({status: 200, contentType: 'text/xml', body: response.toString()});
      } else {
        resolve({status: 200, contentType: 'application/json', body: JSON.stringify(response ?? null)});
      }
    };
    try {
      fn.handler(context, event, respond);
    } catch (error) {
      respond(error);
    }
  });
}

const lines = readline.createInterface({input: process.stdin});
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(() => invoke(JSON.parse(line))).then((answer) => {
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
