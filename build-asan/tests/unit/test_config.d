build-asan/tests/unit/test_config.o: tests/unit/test_config.c \
 common/config.h agent/daemon/defaults.h common/log.h
common/config.h:
agent/daemon/defaults.h:
common/log.h:
