# Benchmarks (issue 7): programs in bench/, driver bench/bench.py.
# Included from the top-level Makefile; the rules are filled in below.
