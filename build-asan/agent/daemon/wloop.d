build-asan/agent/daemon/wloop.o: agent/daemon/wloop.c \
 agent/daemon/wloop.h common/backoff.h common/config.h common/clock.h \
 common/gwconn.h common/log.h
agent/daemon/wloop.h:
common/backoff.h:
common/config.h:
common/clock.h:
common/gwconn.h:
common/log.h:
