# Benchmarks (issue 7): programs in bench/, driver bench/bench.py.
# Included from the top-level Makefile; the rules are filled in below.

# ---- bench programs: bare_pool, bench_client ----
# The floor we compare with: a bare libgearman worker pool and a measuring
# client, one C file each. The objects come from the top-level %.o rule
# ($(CC) $(CPPFLAGS) $(CFLAGS)); SANITIZE=1 applies here too.
BENCH_BIN := $(BUILD)/bench/bare_pool $(BUILD)/bench/bench_client

$(BENCH_BIN): %: %.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lgearman -lpthread

.PHONY: bench-build
bench-build: $(BENCH_BIN)
# ---- end of bench programs (more bench rules go below) ----
