build-asan/agent/coordinator/buildref.o: agent/coordinator/buildref.c \
 agent/coordinator/buildref.h
agent/coordinator/buildref.h:
