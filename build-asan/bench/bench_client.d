build-asan/bench/bench_client.o: bench/bench_client.c
