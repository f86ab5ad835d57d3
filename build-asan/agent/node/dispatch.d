build-asan/agent/node/dispatch.o: agent/node/dispatch.c agent/node/node.h \
 common/config.h common/sign.h common/strvec.h common/clock.h \
 common/gadmin.h common/gwconn.h common/jenkins.h common/strvec.h \
 common/log.h common/metrics.h common/xalloc.h agent/daemon/daemon.h \
 agent/daemon/shutdown.h agent/daemon/wloop.h common/backoff.h
agent/node/node.h:
common/config.h:
common/sign.h:
common/strvec.h:
common/clock.h:
common/gadmin.h:
common/gwconn.h:
common/jenkins.h:
common/strvec.h:
common/log.h:
common/metrics.h:
common/xalloc.h:
agent/daemon/daemon.h:
agent/daemon/shutdown.h:
agent/daemon/wloop.h:
common/backoff.h:
