"""The local Twilio, checked against Twilio's OpenAPI specs, with its Serverless side running Functions."""
