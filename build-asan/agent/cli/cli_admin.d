build-asan/agent/cli/cli_admin.o: agent/cli/cli_admin.c agent/cli/cli.h \
 common/config.h common/gclient.h common/config.h common/gadmin.h \
 common/sign.h common/xalloc.h
agent/cli/cli.h:
common/config.h:
common/gclient.h:
common/config.h:
common/gadmin.h:
common/sign.h:
common/xalloc.h:
