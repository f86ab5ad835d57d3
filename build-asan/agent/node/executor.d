build-asan/agent/node/executor.o: agent/node/executor.c agent/node/node.h \
 common/config.h common/sign.h common/strvec.h agent/node/advert.h \
 agent/daemon/daemon.h common/backoff.h common/clock.h common/gwconn.h \
 common/jenkins.h common/strvec.h common/log.h common/metrics.h \
 common/params.h agent/daemon/shutdown.h agent/node/state.h \
 common/xalloc.h
agent/node/node.h:
common/config.h:
common/sign.h:
common/strvec.h:
agent/node/advert.h:
agent/daemon/daemon.h:
common/backoff.h:
common/clock.h:
common/gwconn.h:
common/jenkins.h:
common/strvec.h:
common/log.h:
common/metrics.h:
common/params.h:
agent/daemon/shutdown.h:
agent/node/state.h:
common/xalloc.h:
