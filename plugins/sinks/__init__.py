"""Built-in graph sinks: FalkorDB (embedded default) and Neo4j."""
