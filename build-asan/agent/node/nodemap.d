build-asan/agent/node/nodemap.o: agent/node/nodemap.c agent/node/node.h \
 common/config.h common/sign.h common/strvec.h common/jarena.h \
 common/jscan.h common/log.h common/xalloc.h agent/daemon/defaults.h
agent/node/node.h:
common/config.h:
common/sign.h:
common/strvec.h:
common/jarena.h:
common/jscan.h:
common/log.h:
common/xalloc.h:
agent/daemon/defaults.h:
