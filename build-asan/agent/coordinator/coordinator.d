build-asan/agent/coordinator/coordinator.o: \
 agent/coordinator/coordinator.c agent/coordinator/buildref.h \
 common/clock.h common/config.h common/gadmin.h common/gclient.h \
 common/config.h common/gwconn.h common/jarena.h common/jenkins.h \
 common/strvec.h common/log.h common/metrics.h \
 agent/coordinator/projmap.h common/sign.h common/strvec.h \
 common/xalloc.h agent/daemon/daemon.h agent/daemon/defaults.h \
 agent/daemon/roles.h agent/daemon/shutdown.h agent/daemon/wloop.h \
 common/backoff.h
agent/coordinator/buildref.h:
common/clock.h:
common/config.h:
common/gadmin.h:
common/gclient.h:
common/config.h:
common/gwconn.h:
common/jarena.h:
common/jenkins.h:
common/strvec.h:
common/log.h:
common/metrics.h:
agent/coordinator/projmap.h:
common/sign.h:
common/strvec.h:
common/xalloc.h:
agent/daemon/daemon.h:
agent/daemon/defaults.h:
agent/daemon/roles.h:
agent/daemon/shutdown.h:
agent/daemon/wloop.h:
common/backoff.h:
