build-asan/bench/lib_floor.o: bench/lib_floor.c
