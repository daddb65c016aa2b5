"""The run hub (issue 14): many runs in one server, a table of them and a comparison of 2-6 runs."""
