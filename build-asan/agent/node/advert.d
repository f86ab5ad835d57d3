build-asan/agent/node/advert.o: agent/node/advert.c agent/node/advert.h \
 common/gwconn.h common/log.h agent/node/node.h common/config.h \
 common/sign.h common/strvec.h agent/daemon/shutdown.h agent/node/state.h \
 common/xalloc.h
agent/node/advert.h:
common/gwconn.h:
common/log.h:
agent/node/node.h:
common/config.h:
common/sign.h:
common/strvec.h:
agent/daemon/shutdown.h:
agent/node/state.h:
common/xalloc.h:
