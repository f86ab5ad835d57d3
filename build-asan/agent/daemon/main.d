build-asan/agent/daemon/main.o: agent/daemon/main.c common/config.h \
 agent/daemon/defaults.h common/jarena.h common/log.h \
 agent/daemon/roles.h common/sign.h
common/config.h:
agent/daemon/defaults.h:
common/jarena.h:
common/log.h:
agent/daemon/roles.h:
common/sign.h:
