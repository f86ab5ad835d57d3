build-asan/agent/cli/cli_build.o: agent/cli/cli_build.c agent/cli/cli.h \
 common/config.h common/gclient.h common/config.h common/clock.h \
 common/gadmin.h common/log.h common/xalloc.h
agent/cli/cli.h:
common/config.h:
common/gclient.h:
common/config.h:
common/clock.h:
common/gadmin.h:
common/log.h:
common/xalloc.h:
