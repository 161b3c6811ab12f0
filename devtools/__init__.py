"""Development-only tools shared by the tests and the benchmarks; the product never imports them."""
