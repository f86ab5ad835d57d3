build-asan/common/gclient.o: common/gclient.c common/gclient.h \
 common/config.h common/log.h common/xalloc.h
common/gclient.h:
common/config.h:
common/log.h:
common/xalloc.h:
