build-asan/common/jarena.o: common/jarena.c common/jarena.h common/log.h \
 common/xalloc.h
common/jarena.h:
common/log.h:
common/xalloc.h:
