build-asan/agent/node/node.o: agent/node/node.c agent/node/node.h \
 common/config.h common/sign.h common/strvec.h agent/node/advert.h \
 agent/daemon/daemon.h common/backoff.h agent/node/capacity.h \
 common/clock.h common/gclient.h common/config.h common/jenkins.h \
 common/strvec.h common/log.h common/metrics.h agent/daemon/roles.h \
 agent/daemon/shutdown.h agent/node/state.h common/xalloc.h
agent/node/node.h:
common/config.h:
common/sign.h:
common/strvec.h:
agent/node/advert.h:
agent/daemon/daemon.h:
common/backoff.h:
agent/node/capacity.h:
common/clock.h:
common/gclient.h:
common/config.h:
common/jenkins.h:
common/strvec.h:
common/log.h:
common/metrics.h:
agent/daemon/roles.h:
agent/daemon/shutdown.h:
agent/node/state.h:
common/xalloc.h:
