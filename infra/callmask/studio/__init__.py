"""Generic Twilio Studio tools, for any flow Twilio accepts: the flow graph, the widget library, the one
template renderer, validation, simulation (with TwiML for redirects), transcripts, diagrams and diffs."""
