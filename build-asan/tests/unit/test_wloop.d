build-asan/tests/unit/test_wloop.o: tests/unit/test_wloop.c \
 common/backoff.h common/clock.h common/config.h agent/daemon/wloop.h
common/backoff.h:
common/clock.h:
common/config.h:
agent/daemon/wloop.h:
