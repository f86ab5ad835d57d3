build-asan/tests/unit/test_nodemap.o: tests/unit/test_nodemap.c \
 common/jarena.h common/sign.h agent/node/node.h common/config.h \
 common/strvec.h
common/jarena.h:
common/sign.h:
agent/node/node.h:
common/config.h:
common/strvec.h:
