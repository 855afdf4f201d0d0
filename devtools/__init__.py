"""Developer tools, not part of the installed package: the benchmark, the site generator and the loopback registry server the tests and the bench share."""
