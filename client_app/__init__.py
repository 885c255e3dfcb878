"""BedREST: the command-line client of λλM's REST API, built on the generated client."""
