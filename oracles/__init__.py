"""Reference code that the tests and the benchmarks both compare the
pipeline against (``oracles.references``): never the product's, never
imported by it."""
