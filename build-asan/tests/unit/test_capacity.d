build-asan/tests/unit/test_capacity.o: tests/unit/test_capacity.c \
 agent/node/capacity.h
agent/node/capacity.h:
