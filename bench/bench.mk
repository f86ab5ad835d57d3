# Benchmarks (issue 7): programs in bench/, driver bench/bench.py.
# Included from the top-level Makefile; the rules are filled in below.

# ---- bench programs: bare_pool, bench_client, lib_floor, http_floor ----
# The floor we compare with: a bare libgearman worker pool, a measuring
# client, the agent's libraries in an otherwise empty program, and libcurl
# against a do-nothing HTTP server, one C file each. The objects come from the top-level %.o rule
# ($(CC) $(CPPFLAGS) $(CFLAGS)); SANITIZE=1 applies here too.
BENCH_BIN := $(BUILD)/bench/bare_pool $(BUILD)/bench/bench_client $(BUILD)/bench/lib_floor \
	     $(BUILD)/bench/http_floor

$(BUILD)/bench/bare_pool $(BUILD)/bench/bench_client: %: %.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lgearman -lpthread

$(BUILD)/bench/lib_floor: %: %.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lgearman

$(BUILD)/bench/http_floor: %: %.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcurl -lpthread

.PHONY: bench-build
bench-build: $(BENCH_BIN)
# ---- end of bench programs (more bench rules go below) ----

# ---- the driver: bench/bench.py ----
# make bench: every scenario at full size; bench/results.md is the table the
# README shows (bench/results.json has every figure). Several minutes, and
# the machine should be otherwise idle.
# make bench-quick: every scenario shrunk (make check runs it through
# tests/test_bench.py); its table goes to $(BUILD)/bench-quick/.
.PHONY: bench bench-quick
all integration: $(BENCH_BIN)

bench: deps
	$(MAKE) $(BINS) bench-build
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER $(PYTHON) bench/bench.py \
	  --build $(abspath $(BUILD)) --out bench

bench-quick: $(BINS) $(BENCH_BIN)
	env -u GEARMAN_SERVERS -u GEARMAN_SERVER $(PYTHON) bench/bench.py --quick \
	  --build $(abspath $(BUILD)) --out $(BUILD)/bench-quick
