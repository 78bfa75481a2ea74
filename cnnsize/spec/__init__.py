"""Reading specs: safe YAML with locations, safe expressions, expansion into a graph."""
