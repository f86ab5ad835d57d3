build-asan/agent/node/state.o: agent/node/state.c agent/node/state.h \
 common/log.h common/xalloc.h
agent/node/state.h:
common/log.h:
common/xalloc.h:
