build-asan/tests/unit/test_state.o: tests/unit/test_state.c \
 agent/node/state.h
agent/node/state.h:
