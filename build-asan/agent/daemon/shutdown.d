build-asan/agent/daemon/shutdown.o: agent/daemon/shutdown.c \
 agent/daemon/shutdown.h
agent/daemon/shutdown.h:
