build-asan/common/config.o: common/config.c common/config.h \
 common/secret.h common/log.h common/xalloc.h
common/config.h:
common/secret.h:
common/log.h:
common/xalloc.h:
