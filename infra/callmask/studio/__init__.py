"""Generic Studio tools for any flow: graph, widget library, renderer, validate, simulate, diagram, diff."""
