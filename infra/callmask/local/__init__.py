"""The local Twilio: a stand-in for the Twilio APIs callmask uses, served on 127.0.0.1 and checked against
Twilio's OpenAPI specs, with its Serverless side running deployed Functions."""
