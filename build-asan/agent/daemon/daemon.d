build-asan/agent/daemon/daemon.o: agent/daemon/daemon.c \
 agent/daemon/daemon.h common/config.h common/jenkins.h common/strvec.h \
 common/log.h common/metrics.h agent/daemon/reload.h \
 agent/daemon/shutdown.h
agent/daemon/daemon.h:
common/config.h:
common/jenkins.h:
common/strvec.h:
common/log.h:
common/metrics.h:
agent/daemon/reload.h:
agent/daemon/shutdown.h:
