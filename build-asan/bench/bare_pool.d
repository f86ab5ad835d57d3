build-asan/bench/bare_pool.o: bench/bare_pool.c
