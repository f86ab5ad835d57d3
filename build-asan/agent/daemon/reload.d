build-asan/agent/daemon/reload.o: agent/daemon/reload.c \
 agent/daemon/reload.h agent/daemon/defaults.h common/config.h \
 common/log.h
agent/daemon/reload.h:
agent/daemon/defaults.h:
common/config.h:
common/log.h:
