build-asan/bench/http_floor.o: bench/http_floor.c
