build-asan/agent/node/capacity.o: agent/node/capacity.c \
 agent/node/capacity.h
agent/node/capacity.h:
