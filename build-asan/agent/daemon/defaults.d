build-asan/agent/daemon/defaults.o: agent/daemon/defaults.c \
 agent/daemon/defaults.h common/buf.h common/config.h common/xalloc.h
agent/daemon/defaults.h:
common/buf.h:
common/config.h:
common/xalloc.h:
