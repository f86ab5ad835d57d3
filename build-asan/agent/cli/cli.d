build-asan/agent/cli/cli.o: agent/cli/cli.c agent/cli/cli.h \
 common/config.h common/gclient.h common/config.h common/log.h \
 common/sign.h common/xalloc.h
agent/cli/cli.h:
common/config.h:
common/gclient.h:
common/config.h:
common/log.h:
common/sign.h:
common/xalloc.h:
